#!/usr/bin/env node
/**
 * `npm run bench -- --formats [--reps N] [--only name,name] [--dtypes BF16,F32,F16]`: MiB/s of the
 * --scheme (llm-compressor presets, quant/llmc) and --mlx (quant/mlx) kernels on one 4096×4096
 * weight (MiB of the source dtype per second, widening included), single thread, with the
 * WebAssembly SIMD kernels on and off (off: the scalar TypeScript loops, the kernels before
 * issue #21). Bundles src/ with esbuild on the fly so it measures the working tree. Not a test:
 * numbers only, printed as a Markdown table.
 */
import { pathToFileURL } from "node:url";
import { bundleSrc, fillPseudoNormal, option, PSEUDO_NORMAL_SEED, timeMs } from "./common.mjs";

const entry = `
export { quantizeLlmcLinear, llmcAbsMax, llmcLinearUnlessNonFinite } from "./src/quant/llmc/linear.js";
export { llmcPreset } from "./src/quant/llmc/presets.js";
export { globalScale } from "./src/quant/llmc/qparams.js";
export { mlxAffineQuantize } from "./src/quant/mlx/affine.js";
export { mlxFpQuantize } from "./src/quant/mlx/fp.js";
export { f32ToBf16Bits, f32ToF16Bits } from "./src/quant/convert.js";
export { useSimd } from "./src/quant/wasm/kernels.js";
`;

export async function runFormatsBench(args) {
  const at = (flag) => option(args, flag);
  const reps = Number(at("--reps") ?? 3);
  const only = at("--only") ? new Set(at("--only").split(",")) : null;
  const dtypes = (at("--dtypes") ?? "BF16,F32").split(",");
  const k = await bundleSrc(entry, "formats");
  const rows = 4096;
  const cols = 4096;
  const n = rows * cols;
  const f32 = new Float32Array(n);
  fillPseudoNormal(f32, cols, PSEUDO_NORMAL_SEED);
  const bf16 = new Uint16Array(n);
  k.f32ToBf16Bits(f32, bf16);
  const f16 = new Uint16Array(n);
  k.f32ToF16Bits(f32, f16);
  // The source as each kernel takes it: float32 values, or 16-bit bits (which the kernels widen, as --scheme passes them too).
  const DT = { F32: "float32", BF16: "bfloat16", F16: "float16" };
  const bits16 = { BF16: bf16, F16: f16 };
  const cases = [];
  for (const p of ["W4A16", "W4A16_ASYM", "W8A16", "W8A8", "W3A16", "FP8_DYNAMIC", "FP8_BLOCK", "NVFP4A16", "MXFP4A16", "MXFP8A16"]) {
    cases.push([`--scheme ${p}`, (dtype) => {
      const preset = k.llmcPreset(p);
      const w = { dtype: DT[dtype], rows, cols, values: dtype === "F32" ? f32 : { bits: bits16[dtype], kind: DT[dtype] } };
      return () => {
        // As format-slice.ts: NVFP4's values pass (absmax and refusal in one scan), then its codes;
        // the others quantize, refusing a non-finite value as they go.
        if (preset.weights.strategy !== "tensor_group") k.llmcLinearUnlessNonFinite(w, preset);
        else k.quantizeLlmcLinear(w, preset, k.globalScale(k.llmcAbsMax(w.values), DT[dtype]));
      };
    }]);
  }
  for (const [bits, group] of [[4, 64], [8, 64], [4, 32], [4, 128], [2, 64], [3, 64], [6, 64]]) {
    cases.push([`--mlx affine ${bits}-bit g${group}`, (dtype) => {
      const w = { dtype: DT[dtype], shape: [rows, cols], data: bits16[dtype] ?? f32 };
      return () => k.mlxAffineQuantize(w, bits, group);
    }]);
  }
  for (const mode of ["mxfp4", "mxfp8", "nvfp4"]) {
    cases.push([`--mlx ${mode}`, (dtype) => {
      const w = { dtype: DT[dtype], shape: [rows, cols], data: bits16[dtype] ?? f32 };
      return () => k.mlxFpQuantize(w, mode);
    }]);
  }
  console.log(`node ${process.version}, one ${rows}×${cols} weight, one thread, median of ${reps} runs (1 warm-up); MiB/s of the source dtype\n`);
  console.log(`| format | ${dtypes.map((d) => `${d} scalar | ${d} SIMD`).join(" | ")} |`);
  console.log(`|---|${dtypes.map(() => "---:|---:").join("|")}|`);
  for (const [name, make] of cases) {
    if (only && !only.has(name)) continue;
    const cells = [];
    for (const dtype of dtypes) {
      const mib = (n * (dtype === "F32" ? 4 : 2)) / 2 ** 20;
      const fn = make(dtype);
      for (const on of [false, true]) {
        k.useSimd(on);
        cells.push((mib / (timeMs(fn, reps) / 1000)).toFixed(0));
      }
    }
    console.log(`| ${name} | ${cells.join(" | ")} |`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await runFormatsBench(process.argv.slice(2));
