import { it } from "vitest";
import { quantizeLlmcLinear } from "../../../src/quant/llmc/linear.js";
import { decompressLlmcLinear } from "../../../src/quant/llmc/decompress.js";
import { LLMC_PRESETS } from "../../../src/quant/llmc/presets.js";
import { roundBf16 } from "../../../src/quant/llmc/arith.js";
import { errorMetrics } from "../../../src/quant/error-metrics.js";
import type { Tensor } from "../../../src/quant/tensor.js";
const bytes = (t: Tensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
it("measure", () => {
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) + 0.5) / 4294967296;
  const rows = 512, cols = 1024;
  const v = new Float32Array(rows * cols);
  for (let i = 0; i < v.length; i++) v[i] = roundBf16(0.02 * Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd()));
  const out: string[] = [];
  for (const p of LLMC_PRESETS.filter((p) => p.refusal === null)) {
    const q = quantizeLlmcLinear({ dtype: "bfloat16", rows, cols, values: v }, p);
    const m = new Map([...q].map(([k, t]) => [k, bytes(t)]));
    const d = decompressLlmcLinear(p, rows, cols, m, "bfloat16");
    const e = errorMetrics(v, d.values);
    out.push(`${p.name} ${e.sqnrDb.toFixed(2)} ${e.cosine.toFixed(5)}`);
  }
  console.log(out.join("\n"));
});
