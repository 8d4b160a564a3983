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
 * T is the weight's dtype (float32, bfloat16 or float16). Each element: q = T(x / scale) (NVFP4: float32
 * x / f32(scale / global)), + zero point in T (ASYM), clamped to the range, then rounded half to
 * even (int; NaN → 0), cast to FP8 (torch, ties to even) or to E2M1 (fp4.ts).
 */
import { KquantError } from "../../errors.js";
import type { Tensor } from "../tensor.js";
import { freshArrays, type Arrays } from "../arrays.js";
import { maxNan, roundBf16, rounderOf, storedBits, type LlmcDType } from "./arith.js";
import { MX_ELEMENT_OFFSET, compressMxScale } from "./e8m0.js";
import { fp4CodeOf, packFp4Codes } from "./fp4.js";
import { simdAbsMax, simdRunCodes, simdRunMinMax, type CodeRound, type CodeSpec } from "../wasm/codes-kernels.js";
import { simdCountNonFinite, simdPackPairs, type Float32Source } from "../wasm/kernels.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../convert.js";
import { packColumnsInt32, packRowsInt32 } from "./pack-int32.js";
import { formatOf, type LlmcArgs, type LlmcFormat, type LlmcPreset } from "./presets.js";
import { fp8Code, globalScale, groupQParams, quantRange } from "./qparams.js";
import { simdGroupedInt, simdMicroscale, type GroupedSpec } from "../wasm/microscale-kernels.js";

/**
 * A Linear weight as model_free_ptq reads it: row-major [rows, cols] values of dtype T, as float32
 * or as T's 16-bit patterns, which the SIMD kernels widen block by block in their own memory (a
 * whole float32 copy in JavaScript costs more than the kernels that read it); the scalar loops
 * widen them whole (llmcValues).
 */
export interface LlmcWeight {
  dtype: LlmcDType;
  rows: number;
  cols: number;
  values: Float32Source;
}

/** The values of a weight source as float32: itself, or its 16-bit patterns widened (convert.ts). */
export function llmcValues(values: Float32Source): Float32Array {
  if (values instanceof Float32Array) return values;
  const out = new Float32Array(values.bits.length);
  (values.kind === "bfloat16" ? bf16BitsToF32 : f16BitsToF32)(values.bits, out);
  return out;
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
 * function of the values. torch's CPU loops have a vectorised body and a scalar remainder: a NaN
 * that min / max / clamp produce is 0xffffffff from the vector code and 0x7fc00000 from the scalar
 * code (bfloat16: 0xffff, 0x7fc0), and its sign then picks the E8M0 exponent (0 or 255), the FP8
 * code (0x7f or 0xff) and the E2M1 code (0 or 8) — measured, see docs/llmcompressor.md. So the
 * output depends on the tensor's size, where the value sits and the CPU's vector width.
 */
export function llmcValueRefusal(source: Float32Source, offset = 0): string | null {
  if (simdCountNonFinite(source) === 0) return null;
  const values = llmcValues(source);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== v || v === Infinity || v === -Infinity) {
      return `non-finite value ${v} at element ${i + offset}: model_free_ptq's bytes for it depend on torch's vectorisation (NaN patterns differ between its vector body and scalar tail)`;
    }
  }
  return null;
}

/** The absmax NVFP4's global scale is computed from: max |x| over the tensor, NaN if any is NaN. */
export function llmcAbsMax(source: Float32Source): number {
  const simdMax = simdAbsMax(source);
  if (simdMax !== null) return simdMax;
  const values = llmcValues(source);
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== v) return NaN;
    const a = v < 0 ? -v : v;
    if (a > m) m = a;
  }
  return m;
}

/** The SIMD kernels' rounding of each dtype (codes-module.ts). */
const CODE_ROUND: Readonly<Record<LlmcDType, CodeRound>> = { float32: "f32", bfloat16: "bf16", float16: "f16" };

/** Adding and subtracting 1.5 · 2^52 rounds a double to an integer, ties to even (|x| < 2^51). */
const ROUND_MAGIC = 6755399441055744;

/**
 * How the scale's groups tile the weight: each row splits into `perRow` runs of `len` elements
 * (a whole row per channel, 16 / 32 / 128 per group, 128 per block), and run k of row r belongs to
 * group `rowBase(r) + k` of the [scaleRows, scaleCols] scale.
 */
export interface Grouping {
  len: number;
  perRow: number;
  scaleRows: number;
  scaleCols: number;
  rowBase(r: number): number;
}

export function groupingOf(a: LlmcArgs, rows: number, cols: number): Grouping {
  switch (a.strategy) {
    case "channel":
      return { len: cols, perRow: 1, scaleRows: rows, scaleCols: 1, rowBase: (r) => r };
    case "group":
    case "tensor_group": {
      const n = cols / a.groupSize!;
      return { len: a.groupSize!, perRow: n, scaleRows: rows, scaleCols: n, rowBase: (r) => r * n };
    }
    case "block": {
      const [bh, bw] = a.blockStructure!;
      const n = cols / bw;
      return { len: bw, perRow: n, scaleRows: Math.ceil(rows / bh), scaleCols: n, rowBase: (r) => Math.floor(r / bh) * n };
    }
    default:
      throw new KquantError(`llm-compressor: weight strategy ${a.strategy} is not one model_free_ptq presets use`);
  }
}

function scaleTensor(values: Float64Array | Float32Array, shape: number[], dtype: LlmcDType): Tensor {
  if (dtype === "float32") return { dtype: "float32", shape, data: values instanceof Float32Array ? values : Float32Array.from(values) };
  const bits = new Uint16Array(values.length);
  if (values instanceof Float32Array) {
    // the SIMD path's scales, finite T values: the array conversion stores the same bits
    (dtype === "bfloat16" ? f32ToBf16Bits : f32ToF16Bits)(values, bits);
    return { dtype, shape, data: bits };
  }
  for (let i = 0; i < values.length; i++) bits[i] = storedBits(values[i]!, dtype);
  return { dtype, shape, data: bits };
}

/**
 * The groups' min and max from the SIMD kernel's per-run ones (runs of `len`, group groups[run]),
 * folded into mins / maxs; false (nothing written) where it does not apply or a run holds NaN / ±Inf.
 */
function simdMinMax(values: Float32Source, len: number, groups: Int32Array, mins: Float64Array, maxs: Float64Array): boolean {
  const rmn = new Float32Array(groups.length);
  const rmx = new Float32Array(groups.length);
  if (!simdRunMinMax(values, len, rmn, rmx)) return false;
  for (let run = 0; run < groups.length; run++) {
    const g = groups[run]!;
    if (rmn[run]! < mins[g]!) mins[g] = rmn[run]!;
    if (rmx[run]! > maxs[g]!) maxs[g] = rmx[run]!;
  }
  return true;
}

/**
 * The codes of every value by the SIMD kernel, run r divided by scales[groups[r]] (+ zero[r]),
 * into `out`; false (scalar loops to run) where it does not apply. For finite weights: NaN
 * quotients' codes are left to the scalar loops.
 */
function simdCodes(spec: CodeSpec, values: Float32Source, len: number, groups: Int32Array, scales: ArrayLike<number>, zeros: Float32Array | null, out: Int8Array | Uint8Array): boolean {
  const perRun = new Float32Array(groups.length);
  for (let r = 0; r < groups.length; r++) perRun[r] = scales[groups[r]!]!;
  return simdRunCodes(spec, values, len, perRun, zeros, new Uint8Array(out.buffer, out.byteOffset, out.length));
}

/** f of each value as a byte (a plain loop: typed arrays' from / map with a callback are slow). */
function mapBytes(values: Float64Array, f: (v: number) => number): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f(values[i]!);
  return out;
}

/** 4-bit pack_to_int32 of unsigned nibbles (code + 8), two per byte, as int32 words. */
function packedPairs(nibbles: Int8Array): Int32Array {
  const bytes = new Uint8Array(nibbles.length / 2);
  const u = new Uint8Array(nibbles.buffer, nibbles.byteOffset, nibbles.length);
  if (!simdPackPairs(u, bytes)) packFp4Codes(u, bytes);
  return new Int32Array(bytes.buffer);
}

/** The group of each run of `g.len` elements of the row-major weight, in order. */
function runGroups(g: Grouping, rows: number): Int32Array {
  const out = new Int32Array(rows * g.perRow);
  for (let r = 0; r < rows; r++) {
    const base = g.rowBase(r);
    for (let k = 0; k < g.perRow; k++) out[r * g.perRow + k] = base + k;
  }
  return out;
}

/**
 * The compressed tensors model_free_ptq writes for `w` under `preset` (suffix → tensor, in the
 * module's state-dict order). `globalScale` (NVFP4 only) is the fused set's global scale
 * (llmcGlobalScale of q/k/v or gate/up); by default the tensor's own.
 * `arrays`: where the SIMD paths make the codes and scales (quant/arrays.ts; reused ones, as a
 * worker formatting block after block passes, leave no garbage and make the tensors good until
 * the next call).
 * Throws when llmcRefusal names a reason.
 */
export function quantizeLlmcLinear(w: LlmcWeight, preset: LlmcPreset, globalScale?: number, arrays: Arrays = freshArrays): Map<string, Tensor> {
  return quantizeLinear(w, preset, globalScale, arrays, false)!;
}

/**
 * quantizeLlmcLinear, or null when `w` holds a NaN or ±Inf (llmcValueRefusal), checked only where
 * the SIMD paths decline: a weight they take is all finite (every group's min and max is), so
 * the common case makes no pass of its own over the values.
 */
export function llmcLinearUnlessNonFinite(w: LlmcWeight, preset: LlmcPreset, globalScale?: number, arrays: Arrays = freshArrays): Map<string, Tensor> | null {
  return quantizeLinear(w, preset, globalScale, arrays, true);
}

function quantizeLinear(w: LlmcWeight, preset: LlmcPreset, globalScale: number | undefined, arrays: Arrays, refuseNonFinite: boolean): Map<string, Tensor> | null {
  const why = llmcRefusal(preset, [w.rows, w.cols]);
  if (why !== null) throw new KquantError(`llm-compressor ${preset.name}: ${why}`);
  const a = preset.weights!;
  const format = formatOf(preset);
  const { rows, cols, dtype } = w;
  const source = w.values;
  // The scalar loops' float32 values, widened only when one of them runs.
  let widened: Float32Array | null = null;
  const floats = (): Float32Array => (widened ??= llmcValues(source));
  const grouping = groupingOf(a, rows, cols);
  const len = grouping.len;
  const nGroups = grouping.scaleRows * grouping.scaleCols;
  const gs = a.strategy === "tensor_group" ? (globalScale ?? llmcGlobalScale([w])) : undefined;
  const scaleShape = [grouping.scaleRows, grouping.scaleCols];
  const micro = simdMicroscaleLinear(w, a, len, gs, arrays);
  if (micro !== null) return microscaleOutputs(a.numBits as 4 | 8, gs, [rows, cols], scaleShape, micro.codes, micro.scaleBytes);
  const grouped = simdGroupedLinear(w, a, format, len, scaleShape, arrays);
  if (grouped !== null) return grouped;
  if (refuseNonFinite && llmcValueRefusal(source) !== null) return null;
  const mins = new Float64Array(nGroups).fill(Infinity);
  const maxs = new Float64Array(nGroups).fill(-Infinity);
  const groups = runGroups(grouping, rows);
  // The SIMD code kernels run only on finite weights (the min / max kernel's answer): which NaN a
  // quotient makes, and so the FP8 code's sign, is the scalar loops' to decide.
  const finite = simdMinMax(source, len, groups, mins, maxs);
  if (!finite) {
    const values = floats();
    for (let run = 0, start = 0; run < groups.length; run++, start += len) {
      const g = groups[run]!;
      let mn = mins[g]!;
      let mx = maxs[g]!;
      for (let i = start; i < start + len; i++) {
        const v = values[i]!;
        if (v !== v) {
          mn = mx = NaN;
          break;
        }
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      mins[g] = mn !== mn || mins[g] !== mins[g] ? NaN : mn;
      maxs[g] = mx !== mx || maxs[g] !== maxs[g] ? NaN : mx;
    }
  }
  const scales = new Float64Array(nGroups);
  const zeros = new Int8Array(nGroups);
  for (let g = 0; g < nGroups; g++) groupQParams(mins[g]!, maxs[g]!, a, dtype, gs, scales, zeros, g);

  const [qmin, qmax] = quantRange(a);
  const bf16 = dtype === "bfloat16";
  const f32 = dtype === "float32";
  const rt = rounderOf(dtype);
  const round = CODE_ROUND[dtype];
  const n = rows * cols;

  if (a.type === "int") {
    const codes = new Int8Array(n);
    const direct = directPacking(a, format, cols);
    const offset = direct ? 1 << (a.numBits - 1) : 0;
    const zf = a.symmetric ? null : new Float32Array(groups.length);
    for (let r = 0; zf !== null && r < groups.length; r++) zf[r] = zeros[groups[r]!]!;
    const simdDone = finite && simdCodes({ kind: "int", round, qmin, qmax, offset }, source, len, groups, scales, zf, codes);
    const values = simdDone ? null : floats();
    for (let run = 0, start = 0; !simdDone && run < groups.length; run++, start += len) {
      const g = groups[run]!;
      const s = scales[g]!;
      const zp = zeros[g]!;
      for (let i = start; i < start + len; i++) {
        const x = values![i]!;
        let v = bf16 ? roundBf16(x / s) : f32 ? Math.fround(x / s) : rt(x / s);
        if (zp !== 0) v = bf16 ? roundBf16(v + zp) : f32 ? Math.fround(v + zp) : rt(v + zp);
        v = v < qmin ? qmin : v > qmax ? qmax : v;
        codes[i] = v !== v ? 0 : v + ROUND_MAGIC - ROUND_MAGIC; // half to even, |v| ≤ 128
      }
    }
    const data = format !== "pack-quantized" ? codes : !simdDone || !direct ? packRowsInt32(codes, rows, cols, a.numBits) : a.numBits === 8 ? new Int32Array(codes.buffer) : packedPairs(codes);
    return intOutputs(a, format, [rows, cols], scaleShape, dtype, data, scales, zeros);
  }

  if (a.numBits === 8) {
    const codes = new Uint8Array(n);
    const simdDone = finite && simdCodes({ kind: "fp8", round, qmin, qmax, offset: 0 }, source, len, groups, scales, null, codes);
    const values = simdDone ? null : floats();
    for (let run = 0, start = 0; !simdDone && run < groups.length; run++, start += len) {
      const s = scales[groups[run]!]!;
      for (let i = start; i < start + len; i++) {
        const x = values![i]!;
        const q = bf16 ? roundBf16(x / s) : f32 ? Math.fround(x / s) : rt(x / s);
        codes[i] = fp8Code(q < -448 ? -448 : q > 448 ? 448 : q);
      }
    }
    if (format === "mxfp8-quantized") return microscaleOutputs(8, gs, [rows, cols], scaleShape, codes, mapBytes(scales, compressMxScale));
    return fp8Outputs([rows, cols], scaleShape, dtype, codes, scales);
  }

  // FP4: NVFP4 divides in float32 by f32(scale / global); MXFP4 divides in T.
  const codes = new Uint8Array(n);
  let divisors = scales;
  if (gs !== undefined) {
    divisors = new Float64Array(scales.length);
    for (let g = 0; g < scales.length; g++) divisors[g] = Math.fround(scales[g]! / gs);
  }
  const inBf16 = gs === undefined && bf16;
  const inF16 = gs === undefined && dtype === "float16";
  const simdDone = finite && simdCodes({ kind: "fp4", round: gs === undefined ? round : "f32", qmin, qmax, offset: 0 }, source, len, groups, divisors, null, codes);
  const values = simdDone ? null : floats();
  for (let run = 0, start = 0; !simdDone && run < groups.length; run++, start += len) {
    const d = divisors[groups[run]!]!;
    for (let i = start; i < start + len; i++) {
      const x = values![i]!;
      const q = inBf16 ? roundBf16(x / d) : inF16 ? rt(x / d) : Math.fround(x / d);
      codes[i] = fp4CodeOf(q < -6 ? -6 : q > 6 ? 6 : q);
    }
  }
  const packed = new Uint8Array(n / 2);
  if (!simdPackPairs(codes, packed)) packFp4Codes(codes, packed);
  return microscaleOutputs(4, gs, [rows, cols], scaleShape, packed, mapBytes(scales, gs !== undefined ? fp8Code : compressMxScale));
}

/** pack_to_int32 of 4- and 8-bit codes is their unsigned fields (code + 8, code + 128) in order, little end first: the codes kernels write them so. */
function directPacking(a: LlmcArgs, format: LlmcFormat, cols: number): boolean {
  return format === "pack-quantized" && (a.numBits === 4 || a.numBits === 8) && cols % 8 === 0;
}

/**
 * The state dict of an int preset: pack-quantized (`data` the int32 words, zero points packed
 * when asymmetric) or int-quantized (`data` the int8 codes); scales in T.
 */
function intOutputs(a: LlmcArgs, format: LlmcFormat, [rows, cols]: number[], scaleShape: number[], dtype: LlmcDType, data: Int32Array | Int8Array, scales: Float64Array | Float32Array, zeros: Int8Array): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  if (format !== "pack-quantized") {
    out.set("weight", { dtype: "int8", shape: [rows!, cols!], data });
    out.set("weight_scale", scaleTensor(scales, scaleShape, dtype));
    return out;
  }
  out.set("weight_packed", { dtype: "int32", shape: [rows!, Math.ceil((cols! * a.numBits) / 32)], data });
  out.set("weight_scale", scaleTensor(scales, scaleShape, dtype));
  out.set("weight_shape", { dtype: "int64", shape: [2], data: BigInt64Array.from([BigInt(rows!), BigInt(cols!)]) });
  if (!a.symmetric) {
    const [zr, zc] = scaleShape as [number, number];
    out.set("weight_zero_point", { dtype: "int32", shape: [Math.ceil((zr * a.numBits) / 32), zc], data: packColumnsInt32(zeros, zr, zc, a.numBits) });
  }
  return out;
}

/** The state dict of FP8 per tensor, channel or block (float-quantized): the codes and the scales in T. */
function fp8Outputs([rows, cols]: number[], scaleShape: number[], dtype: LlmcDType, codes: Uint8Array, scales: Float64Array | Float32Array): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ["weight", { dtype: "float8_e4m3fn", shape: [rows!, cols!], data: codes }],
    ["weight_scale", scaleTensor(scales, scaleShape, dtype)],
  ]);
}

/**
 * The int presets and FP8 per channel or group (each group a run of one row) in one SIMD pass
 * per block (wasm/microscale-kernels.ts simdGroupedInt): min / max, scale and zero point, codes
 * (packed in the module where pack_to_int32's fields allow, directPacking); their state dict, or
 * null where it does not apply (FP8 blocks, runs not a multiple of 16, no SIMD, a group holding
 * NaN or ±Inf) and the loops of quantizeLlmcLinear compute the same bytes.
 */
function simdGroupedLinear(w: LlmcWeight, a: LlmcArgs, format: LlmcFormat, len: number, scaleShape: number[], arrays: Arrays): Map<string, Tensor> | null {
  const int = a.type === "int";
  if ((a.strategy !== "group" && a.strategy !== "channel") || !(int || (a.numBits === 8 && a.scaleDtype === null))) return null;
  const { rows, cols, dtype } = w;
  const n = rows * cols;
  const direct = int && directPacking(a, format, cols);
  const pairs = direct && a.numBits === 4;
  const codes = arrays("llmc codes", Uint8Array, pairs ? n / 2 : n);
  const scales = arrays("llmc scales", Float32Array, n / len);
  const zeros = new Int8Array(n / len);
  const [qmin, qmax] = quantRange(a);
  const spec: GroupedSpec = {
    scales: a.symmetric ? "llmc_sym" : "llmc_asym",
    codes: int ? "int" : "fp8",
    round: CODE_ROUND[dtype],
    param: a.symmetric ? (qmax - qmin) / 2 : qmax - qmin,
    qmin,
    qmax,
    offset: direct ? 1 << (a.numBits - 1) : 0,
  };
  if (!simdGroupedInt(spec, w.values, len, pairs, codes, scales, a.symmetric ? null : zeros)) return null;
  if (!int) return fp8Outputs([rows, cols], scaleShape, dtype, codes, scales);
  const i8 = new Int8Array(codes.buffer, codes.byteOffset, codes.length);
  const data = direct ? new Int32Array(codes.buffer, codes.byteOffset, codes.length / 4) : format === "pack-quantized" ? packRowsInt32(i8, rows, cols, a.numBits) : i8;
  return intOutputs(a, format, [rows, cols], scaleShape, dtype, data, scales, zeros);
}

/**
 * The state dict of NVFP4 (`gs` given: the global scale; FP8 scale bytes), MXFP4 (4 bits) or
 * MXFP8 (8 bits; E8M0 scale bytes) from the codes (fp4: packed two per byte) and scale bytes.
 */
function microscaleOutputs(bits: 4 | 8, gs: number | undefined, [rows, cols]: number[], scaleShape: number[], codes: Uint8Array, scaleBytes: Uint8Array): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  if (bits === 8) {
    out.set("weight", { dtype: "float8_e4m3fn", shape: [rows!, cols!], data: codes });
    out.set("weight_scale", { dtype: "uint8", shape: scaleShape, data: scaleBytes });
    return out;
  }
  if (gs !== undefined) out.set("weight_global_scale", { dtype: "float32", shape: [1], data: Float32Array.of(gs) });
  out.set("weight_packed", { dtype: "uint8", shape: [rows!, cols! / 2], data: codes });
  out.set("weight_scale", { dtype: gs !== undefined ? "float8_e4m3fn" : "uint8", shape: scaleShape, data: scaleBytes });
  return out;
}

/**
 * NVFP4, MXFP4 and MXFP8 of a float32 or bfloat16 weight in one SIMD pass (wasm/microscale-kernels.ts):
 * the codes (fp4 packed) and scale bytes, or null where it does not apply (another format, float16,
 * no SIMD, a group holding NaN or ±Inf) and the scalar loops below compute the same bytes.
 */
function simdMicroscaleLinear(w: LlmcWeight, a: LlmcArgs, len: number, gs: number | undefined, arrays: Arrays): { codes: Uint8Array; scaleBytes: Uint8Array } | null {
  const nv = a.scaleDtype === "float8_e4m3fn" && a.strategy === "tensor_group" && a.numBits === 4;
  const mx = a.scaleDtype === "uint8" && a.strategy === "group" && (a.numBits === 4 || a.numBits === 8);
  if (a.type !== "float" || !a.symmetric || !(nv || mx) || (mx && w.dtype === "float16")) return null;
  const round = CODE_ROUND[w.dtype];
  const n = w.rows * w.cols;
  const codes = arrays("llmc codes", Uint8Array, a.numBits === 4 ? n / 2 : n);
  const scaleBytes = arrays("llmc scale bytes", Uint8Array, n / len);
  const spec = nv
    ? ({ scales: "llmc_nv", codes: "fp4", round, codesRound: "f32", param: gs! } as const)
    : ({ scales: "llmc_mx", codes: a.numBits === 4 ? "fp4" : "fp8", round, codesRound: round, param: MX_ELEMENT_OFFSET[a.numBits as 4 | 8] } as const);
  return simdMicroscale(spec, w.values, len, codes, scaleBytes) ? { codes, scaleBytes } : null;
}

/** NVFP4's global scale shared by a fused set of weights (q/k/v, gate/up), or one weight alone. */
export function llmcGlobalScale(weights: readonly LlmcWeight[]): number {
  let m = 0;
  for (const w of weights) m = maxNan(m, llmcAbsMax(w.values));
  return globalScale(m, weights[0]!.dtype);
}
