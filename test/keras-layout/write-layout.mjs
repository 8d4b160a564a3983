// Writes a safetensors file in the Keras Dense layout with the built library (dist/), for
// load_check.py: every 2-D float tensor N, taken as a Dense kernel (input_dim, units) as stored,
// becomes N (Keras `kernel`), N_scale (`kernel_scale`) and, for grouped int4, N_zero
// (`kernel_zero`) and N_g_idx (`g_idx`); other tensors are copied as they are.
// Usage: node write-layout.mjs SRC.safetensors OUT.safetensors int8|int4 [BLOCK_SIZE]
// (int4: BLOCK_SIZE -1 is per channel, as in Keras; none is Keras's default, 128.)
import { createSafetensorsWriter, openTensors, quantizeDenseKernel, toFloat32 } from "../../dist/index.js";

const [src, out, mode, block] = process.argv.slice(2);
if (!src || !out || (mode !== "int8" && mode !== "int4")) {
  console.error("usage: node write-layout.mjs SRC.safetensors OUT.safetensors int8|int4 [BLOCK_SIZE]");
  process.exit(2);
}
const opts = { mode };
if (block !== undefined) opts.blockSize = Number(block);

const KINDS = { F32: "float32", F16: "float16", BF16: "bfloat16" };
const ST = { int8: "I8", float32: "F32" };
/** Stored name of each Keras variable, for source tensor N. */
const SUFFIX = { kernel: "", kernel_scale: "_scale", kernel_zero: "_zero", g_idx: "_g_idx" };

const reader = await openTensors(src);
try {
  const items = [];
  for (const info of reader.tensors) {
    const bytes = await reader.read(info.name);
    const kind = KINDS[info.dtype];
    if (!kind || info.shape.length !== 2) {
      items.push([{ name: info.name, dtype: info.dtype, shape: info.shape }, bytes]);
      continue;
    }
    const copy = new Uint8Array(bytes); // aligned, owned
    const data = kind === "float32" ? new Float32Array(copy.buffer) : new Uint16Array(copy.buffer);
    const kernel = toFloat32({ dtype: kind, shape: info.shape, data }).data;
    const vars = quantizeDenseKernel(kernel, info.shape, opts);
    for (const [name, t] of Object.entries(vars)) {
      const b = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      items.push([{ name: info.name + SUFFIX[name], dtype: ST[t.dtype], shape: t.shape }, b]);
    }
  }
  const writer = await createSafetensorsWriter(out, items.map(([p]) => p), {});
  for (const [p, b] of items) await writer.write(p.name, b);
  await writer.finish();
} finally {
  await reader.close();
}
