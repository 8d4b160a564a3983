#!/usr/bin/env node
/**
 * `node bench/kernels.mjs [--reps N] [--only name,name] [--scalar]`: ns/element of each quantization kernel on one
 * 4096×1024 float32 tensor (the bench's tensor shape), single thread; --scalar turns the
 * WebAssembly SIMD kernels off to time the JS loops. Bundles src/ with esbuild
 * on the fly so it measures the working tree, not a stale dist/. Not a test: numbers only.
 */
import { bundleSrc, fillPseudoNormal, option, PSEUDO_NORMAL_SEED, timeMs } from "./common.mjs";

const args = process.argv.slice(2);
const reps = Number(option(args, "--reps", 7));
const only = option(args, "--only") ? new Set(option(args, "--only").split(",")) : null;

const entry = `
export { absMaxQuantize } from "./src/quant/absmax.js";
export { absMaxAlong } from "./src/quant/absmax-along.js";
export { countNonFinite } from "./src/quant/finite.js";
export { quantizeFloat8, computeFloat8Scale } from "./src/quant/float8-scale.js";
export { packInt4 } from "./src/quant/int4.js";
export { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "./src/quant/convert.js";
export { absMaxQuantizeGroupedWithZeroPoint } from "./src/quant/grouped.js";
export { quantizeTensor } from "./src/pipeline/quantize/quantize-tensor.js";
export { useSimd } from "./src/quant/wasm/kernels.js";
export { storedNamesOf, storedTensors } from "./src/plan/stored.js";
`;
const k = await bundleSrc(entry, "kernels");
const scalar = args.includes("--scalar");
if (scalar) k.useSimd(false);

const rows = 4096;
const cols = 1024;
const n = rows * cols;
const x = new Float32Array(n);
fillPseudoNormal(x, cols, PSEUDO_NORMAL_SEED);
const t = { dtype: "float32", shape: [rows, cols], data: x };
const bf16 = new Uint16Array(n);
k.f32ToBf16Bits(x, bf16);
const f32Out = new Float32Array(n);
const codes = new Uint8Array(n);
// A plan step as quantize-tensor.ts takes it: the source, the spec and the stored tensors (plan/stored.ts).
const step = (mode, extra = {}) => {
  const spec = { mode, axis: 1, valueRange: [-127, 127], epsilon: 1e-7, ...extra };
  const geometry = { mode, axis: spec.axis, packAxis: spec.packAxis, blockSize: spec.blockSize };
  return { kind: "quantize", source: { name: "w", dtype: "F32", shape: [rows, cols] }, spec, stored: k.storedTensors(k.storedNamesOf("w"), [rows, cols], geometry) };
};
const bytes = new Uint8Array(x.buffer);
const scaleRows = k.computeFloat8Scale({ dtype: "float32", shape: [1, 1], data: k.absMaxAlong(x, [rows, cols], null).amax }, 1, 448).data;

const kernels = {
  countNonFinite: () => k.countNonFinite(x),
  "absMaxAlong axis=-1": () => k.absMaxAlong(x, [rows, cols], [1]),
  "absMaxAlong axis=0": () => k.absMaxAlong(x, [rows, cols], [0]),
  "absMaxQuantize int8 axis=-1": () => k.absMaxQuantize(t, -1),
  "absMaxQuantize int8 axis=0": () => k.absMaxQuantize(t, 0),
  "absMaxQuantize float32 axis=-1": () => k.absMaxQuantize(t, -1, { dtype: "float32" }),
  "quantizeFloat8 e4m3 per-tensor": () => k.quantizeFloat8(x, scaleRows, "float8_e4m3fn", codes),
  "bf16 -> f32": () => k.bf16BitsToF32(bf16, f32Out),
  "f16 -> f32": () => k.f16BitsToF32(bf16, f32Out),
  "CLI int8 (count + quantize)": () => k.quantizeTensor(step("int8"), bytes, "bench"),
  "CLI int4 (count + quantize + pack)": () => k.quantizeTensor(step("int4", { valueRange: [-8, 7], packAxis: 1 }), bytes, "bench"),
  "CLI int4 block 128": () => k.quantizeTensor(step("int4_grouped", { axis: 0, valueRange: [-8, 7], blockSize: 128, packAxis: 0 }), bytes, "bench"),
  "CLI int4 block 32 axis=-1": () => k.quantizeTensor(step("int4_grouped", { axis: 1, valueRange: [-8, 7], blockSize: 32, packAxis: 1 }), bytes, "bench"),
  "CLI int4 block 128 axis=-1": () => k.quantizeTensor(step("int4_grouped", { axis: 1, valueRange: [-8, 7], blockSize: 128, packAxis: 1 }), bytes, "bench"),
  "absMaxQuantizeGroupedWithZeroPoint block 128 axis=0": () => k.absMaxQuantizeGroupedWithZeroPoint(t, 128),
  "absMaxQuantizeGroupedWithZeroPoint block 128 axis=1": () => k.absMaxQuantizeGroupedWithZeroPoint(t, 128, { axis: 1 }),
  "absMaxQuantizeGroupedWithZeroPoint block 32 axis=1": () => k.absMaxQuantizeGroupedWithZeroPoint(t, 32, { axis: 1 }),
  "CLI float8 e4m3 per-tensor": () => k.quantizeTensor(step("float8_e4m3fn", { axis: null }), bytes, "bench"),
};

console.log(`node ${process.version}, ${rows}×${cols} float32, median of ${reps} runs (1 warm-up)${scalar ? ", SIMD off" : ""}\n`);
console.log("| kernel | ms | ns/element |");
console.log("|---|---:|---:|");
for (const [name, fn] of Object.entries(kernels)) {
  if (only && !only.has(name)) continue;
  const ms = timeMs(fn, reps);
  console.log(`| ${name} | ${ms.toFixed(1)} | ${((ms * 1e6) / n).toFixed(2)} |`);
}
