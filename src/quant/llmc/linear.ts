/**
 * model_free_ptq's quantization of one Linear weight [out, in] under a preset, byte for byte as
 * llm-compressor 0.14.0.1 + compressed-tensors 0.19.0 write it on CPU
 * (llmcompressor/entrypoints/model_free/converter.py: initialize_quantized_linear, calibrate_weight,
 * compress_module). The tensors returned are the module's compressed state dict, by suffix:
 *
 *   pack-quantized        weight_packed I32 [out, ceil(in·b/32)], weight_scale T [out, in/128],
 *                         weight_shape I64 [2], + weight_zero_point I32 [ceil(out·b/32), in/128] (ASYM)
 *   int-quantized         weight I8 [out, in] (codes), weight_scale T [out, in/128] or [out, 1]
 *   float-quantized       weight F8_E4M3 [out, in], weight_scale T [out, 1] or [⌈out/128⌉, ⌈in/128⌉]
 *   nvfp4-pack-quantized  weight_packed U8 [out, in/2], weight_scale F8_E4M3 [out, in/16],
 *                         weight_global_scale F32 [1]
 *   mxfp4-pack-quantized  weight_packed U8 [out, in/2], weight_scale U8 (E8M0) [out, in/32]
 *   mxfp8-quantized       weight F8_E4M3 [out, in], weight_scale U8 (E8M0) [out, in/32]
 *
 * T is the weight's dtype (float32 or bfloat16). Each element: q = T(x / scale) (NVFP4: float32
 * x / f32(scale / global)), + zero point in T (ASYM), clamped to the range, then rounded half to
 * even (int; NaN → 0), cast to FP8 (torch, ties to even) or to E2M1 (fp4.ts).
 */
import { KquantError } from "../../errors.js";
import type { Tensor } from "../tensor.js";
import { bf16Bits, clamp, maxNan, minNan, rounderOf, type LlmcDType } from "./arith.js";
import { compressMxScale } from "./e8m0.js";
import { castToFp4, fp4Code, packFp4Codes } from "./fp4.js";
import { packColumnsInt32, packRowsInt32 } from "./pack-int32.js";
import { formatOf, type LlmcArgs, type LlmcPreset } from "./presets.js";
import { fp8Code, globalScale, groupQParams, quantRange, type GroupQParams } from "./qparams.js";
import { roundHalfEven } from "../round.js";

/** A Linear weight as model_free_ptq reads it: row-major [rows, cols] values of dtype T, widened to float32. */
export interface LlmcWeight {
  dtype: LlmcDType;
  rows: number;
  cols: number;
  values: Float32Array;
}

/**
 * Why model_free_ptq cannot write this weight under `preset` (it raises, or writes a file it
 * cannot save), or null. 2-D only; groups must divide in (an unflatten to [-1, g] fails
 * otherwise, in < g included); FP8_BLOCK pads in to a multiple of 128 and then hands
 * safetensors a non-contiguous slice, which save_file refuses.
 */
export function llmcRefusal(preset: LlmcPreset, shape: readonly number[]): string | null {
  if (preset.refusal !== null) return preset.refusal;
  const w = preset.weights!;
  if (shape.length !== 2) return `expected 2D linear weight, but got shape (${shape.join(", ")})`;
  const cols = shape[1]!;
  if ((w.strategy === "group" || w.strategy === "tensor_group") && (cols % w.groupSize! !== 0 || cols === 0)) {
    return `group size ${w.groupSize} does not divide in_features ${cols} (unflatten to [-1, ${w.groupSize}] fails)`;
  }
  if (w.strategy === "block" && cols % w.blockStructure![1] !== 0) {
    return `block width ${w.blockStructure![1]} does not divide in_features ${cols} (model_free_ptq pads, then safetensors refuses the non-contiguous weight)`;
  }
  return null;
}

/**
 * Why kquant leaves a weight with NaN or ±∞ float: model_free_ptq's bytes there are not a
 * function of the values. torch's CPU loops run a vector body over the first multiple of 2·(lanes)
 * elements and a scalar tail: a NaN that min / max / clamp produce is 0xffffffff in the body and
 * 0x7fc00000 in the tail (bfloat16: 0xffff, 0x7fc0), and its sign then picks the E8M0 exponent
 * (0 or 255), the FP8 code (0x7f or 0xff) and the E2M1 code (0 or 8) — measured, see
 * docs/llmcompressor.md. So the output depends on where the value sits and on the CPU's vector width.
 */
export function llmcValueRefusal(values: Float32Array): string | null {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== v || v === Infinity || v === -Infinity) {
      return `non-finite value ${v} at element ${i}: model_free_ptq's bytes for it depend on torch's vectorisation (NaN patterns differ between its vector body and scalar tail)`;
    }
  }
  return null;
}

/** The absmax NVFP4's global scale is computed from: max |x| over the tensor, NaN if any is NaN. */
export function llmcAbsMax(values: Float32Array): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== v) return NaN;
    const a = v < 0 ? -v : v;
    if (a > m) m = a;
  }
  return m;
}

/** The groups the scale is over: [scaleRows, scaleCols] and each element's group. */
interface Grouping {
  scaleRows: number;
  scaleCols: number;
  groupOf(r: number, c: number): number;
}

function groupingOf(a: LlmcArgs, rows: number, cols: number): Grouping {
  switch (a.strategy) {
    case "channel":
      return { scaleRows: rows, scaleCols: 1, groupOf: (r) => r };
    case "group":
    case "tensor_group": {
      const g = a.groupSize!;
      const n = cols / g;
      return { scaleRows: rows, scaleCols: n, groupOf: (r, c) => r * n + Math.floor(c / g) };
    }
    case "block": {
      const [bh, bw] = a.blockStructure!;
      const n = Math.ceil(cols / bw);
      return { scaleRows: Math.ceil(rows / bh), scaleCols: n, groupOf: (r, c) => Math.floor(r / bh) * n + Math.floor(c / bw) };
    }
    default:
      throw new KquantError(`llm-compressor: weight strategy ${a.strategy} is not one model_free_ptq presets use`);
  }
}

function scaleTensor(values: Float64Array | number[], shape: number[], dtype: LlmcDType): Tensor {
  if (dtype === "float32") return { dtype: "float32", shape, data: Float32Array.from(values) };
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = bf16Bits(values[i]!);
  return { dtype: "bfloat16", shape, data: bits };
}

/**
 * The compressed tensors model_free_ptq writes for `w` under `preset` (suffix → tensor, in the
 * module's state-dict order). `globalScale` (NVFP4 only) is the fused set's global scale
 * (globalScale(max absmax of q/k/v or gate/up)); by default the tensor's own.
 * Throws when llmcRefusal names a reason.
 */
export function quantizeLlmcLinear(w: LlmcWeight, preset: LlmcPreset, globalScale?: number): Map<string, Tensor> {
  const why = llmcRefusal(preset, [w.rows, w.cols]);
  if (why !== null) throw new KquantError(`llm-compressor ${preset.name}: ${why}`);
  const a = preset.weights!;
  const format = formatOf(preset);
  const { rows, cols, values, dtype } = w;
  const r = rounderOf(dtype);
  const grouping = groupingOf(a, rows, cols);
  const nGroups = grouping.scaleRows * grouping.scaleCols;
  const mins = new Float64Array(nGroups).fill(Infinity);
  const maxs = new Float64Array(nGroups).fill(-Infinity);
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < cols; c++) {
      const g = grouping.groupOf(i, c);
      const v = values[i * cols + c]!;
      mins[g] = minNan(mins[g]!, v);
      maxs[g] = maxNan(maxs[g]!, v);
    }
  }
  const gs = a.strategy === "tensor_group" ? (globalScale ?? globalScaleOf(w)) : undefined;
  const qp: GroupQParams[] = [];
  for (let g = 0; g < nGroups; g++) qp.push(groupQParams(mins[g]!, maxs[g]!, a, dtype, gs));

  const [qmin, qmax] = quantRange(a);
  const n = rows * cols;
  const out = new Map<string, Tensor>();
  const scaleShape = [grouping.scaleRows, grouping.scaleCols];
  const scales = qp.map((q) => q.scale);

  if (a.type === "int") {
    const codes = new Int8Array(n);
    for (let i = 0; i < rows; i++) {
      for (let c = 0; c < cols; c++) {
        const q = qp[grouping.groupOf(i, c)]!;
        let v = r(values[i * cols + c]! / q.scale);
        if (!a.symmetric) v = r(v + q.zeroPoint);
        v = clamp(v, qmin, qmax);
        codes[i * cols + c] = v !== v ? 0 : roundHalfEven(v);
      }
    }
    if (format === "pack-quantized") {
      out.set("weight_packed", { dtype: "int32", shape: [rows, Math.ceil((cols * a.numBits) / 32)], data: packRowsInt32(codes, rows, cols, a.numBits) });
      out.set("weight_scale", scaleTensor(scales, scaleShape, dtype));
      out.set("weight_shape", { dtype: "int64", shape: [2], data: BigInt64Array.from([BigInt(rows), BigInt(cols)]) });
      if (!a.symmetric) {
        const zp = Int8Array.from(qp.map((q) => q.zeroPoint));
        const [zr, zc] = scaleShape as [number, number];
        out.set("weight_zero_point", { dtype: "int32", shape: [Math.ceil((zr * a.numBits) / 32), zc], data: packColumnsInt32(zp, zr, zc, a.numBits) });
      }
    } else {
      out.set("weight", { dtype: "int8", shape: [rows, cols], data: codes });
      out.set("weight_scale", scaleTensor(scales, scaleShape, dtype));
    }
    return out;
  }

  if (a.numBits === 8) {
    const codes = new Uint8Array(n);
    for (let i = 0; i < rows; i++) {
      for (let c = 0; c < cols; c++) {
        const q = qp[grouping.groupOf(i, c)]!;
        codes[i * cols + c] = fp8Code(clamp(r(values[i * cols + c]! / q.scale), -448, 448));
      }
    }
    out.set("weight", { dtype: "float8_e4m3fn", shape: [rows, cols], data: codes });
    out.set(
      "weight_scale",
      format === "mxfp8-quantized" ? { dtype: "uint8", shape: scaleShape, data: Uint8Array.from(scales, compressMxScale) } : scaleTensor(scales, scaleShape, dtype),
    );
    return out;
  }

  // FP4: NVFP4 divides in float32 by f32(scale / global); MXFP4 divides in T.
  const codes = new Uint8Array(n);
  const divisor = gs === undefined ? scales : scales.map((s) => Math.fround(s / gs));
  const rd = gs === undefined ? r : Math.fround;
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < cols; c++) {
      const d = divisor[grouping.groupOf(i, c)]!;
      codes[i * cols + c] = fp4Code(castToFp4(clamp(rd(values[i * cols + c]! / d), -6, 6)));
    }
  }
  const packed = new Uint8Array(n / 2);
  packFp4Codes(codes, packed);
  if (gs !== undefined) {
    out.set("weight_global_scale", { dtype: "float32", shape: [1], data: Float32Array.of(gs) });
    out.set("weight_packed", { dtype: "uint8", shape: [rows, cols / 2], data: packed });
    out.set("weight_scale", { dtype: "float8_e4m3fn", shape: scaleShape, data: Uint8Array.from(scales, (s) => fp8Code(s)) });
  } else {
    out.set("weight_packed", { dtype: "uint8", shape: [rows, cols / 2], data: packed });
    out.set("weight_scale", { dtype: "uint8", shape: scaleShape, data: Uint8Array.from(scales, compressMxScale) });
  }
  return out;
}

function globalScaleOf(w: LlmcWeight): number {
  return llmcGlobalScale([w]);
}

/** NVFP4's global scale shared by a fused set of weights (q/k/v, gate/up), or one weight alone. */
export function llmcGlobalScale(weights: readonly LlmcWeight[]): number {
  let m = 0;
  for (const w of weights) m = maxNan(m, llmcAbsMax(w.values));
  return globalScale(m, weights[0]!.dtype);
}
