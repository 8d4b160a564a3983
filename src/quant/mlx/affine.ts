/**
 * MLX's affine quantization, bit for bit as `mx.quantize(w, group_size, bits, mode="affine")` and
 * `mx.dequantize` compute it on the CPU (mlx[cpu] 0.32.4; the kernel is `quantize` in
 * mlx/backend/cpu/quantized.cpp, the read-back the op graph of `affine_dequantize` in mlx/ops.cpp;
 * docs/mlx-reference.md gives each rule and the golden vectors in fixtures/mlx/ pin it).
 *
 * Shapes: w is [rows, cols] (any leading dims folded into rows), groups of `groupSize` along cols:
 *   wq      U32 [rows, cols·bits/32]   codes u in 0..2^bits-1, a little-endian bit stream: element i
 *                                      of the row at bit i·bits (3-, 5- and 6-bit codes cross words)
 *   scales  dtype [rows, cols/groupSize]
 *   biases  dtype [rows, cols/groupSize]   and the weight reads back as scales · u + biases
 *
 * Every group fills whole uint32 words (32·bits bits for every accepted size), so any block of
 * whole rows quantizes on its own into the matching slice of words, scales and biases.
 */
import { KquantError } from "../../errors.js";
import { freshArrays, type Arrays } from "../arrays.js";
import { rounderOf, storeAs, valuesOf, type MlxFloat } from "./floats.js";
import { simdAffine } from "../wasm/microscale-kernels.js";

/** The bit widths mx.quantize takes in affine mode. */
export const MLX_AFFINE_BITS: readonly number[] = [1, 2, 3, 4, 5, 6, 8];
/** The group sizes mx.quantize takes in affine mode. */
export const MLX_AFFINE_GROUP_SIZES: readonly number[] = [32, 64, 128];

/** A float tensor MLX quantizes: float32 data, or float16 / bfloat16 bit patterns. */
export interface MlxFloatTensor {
  dtype: MlxFloat;
  shape: number[];
  data: Float32Array | Uint16Array;
}

/** mx.quantize's affine output: packed codes, and scales and biases in the input's dtype. */
export interface MlxAffineQuantized {
  /** [rows, cols·bits/32] */
  wq: Uint32Array;
  wqShape: number[];
  /** [rows, cols/groupSize], the input's dtype */
  scales: MlxFloatTensor;
  /** [rows, cols/groupSize], the input's dtype */
  biases: MlxFloatTensor;
}

/** MLX's refusal of a bit width or group size in affine mode, as one line; null when MLX takes them. */
export function mlxAffineRefusal(bits: number, groupSize: number): string | null {
  if (!MLX_AFFINE_GROUP_SIZES.includes(groupSize)) {
    return `MLX's affine group sizes are 32, 64 and 128, not ${groupSize}`;
  }
  if (!MLX_AFFINE_BITS.includes(bits)) return `MLX's affine bit widths are 1, 2, 3, 4, 5, 6 and 8, not ${bits}`;
  return null;
}

/**
 * [rows, cols] of a tensor MLX quantizes in groups of `groupSize` (leading dims folded into rows),
 * or why not in one line: fewer than 2 dimensions, a last dimension the group does not divide,
 * data of another length than the shape's.
 */
export function mlxRowsCols(w: Pick<MlxFloatTensor, "shape" | "data">, groupSize: number, what = "the group size"): [number, number] {
  const shape = w.shape;
  if (shape.length < 2) throw new KquantError(`mx.quantize needs at least 2 dimensions, this is [${shape.join(", ")}]`);
  const cols = shape[shape.length - 1]!;
  if (cols % groupSize !== 0) {
    throw new KquantError(`the last dimension ${cols} is not a multiple of ${what} ${groupSize}`);
  }
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  if (rows * cols !== w.data.length) throw new KquantError(`shape [${shape.join(", ")}] holds ${rows * cols} values, the data ${w.data.length}`);
  return [rows, cols];
}

const EPS = Math.fround(1e-7);

/** std::rint on a float32 value: round half to even (|x| < 2^52 throughout). */
export function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * mx.quantize(w, groupSize, bits, mode="affine") on the CPU. Per group, in float32: the min and
 * max (a NaN skipped), scale = max((max − min)/(2^bits − 1), 1e-7) signed towards the edge of the
 * larger magnitude, q0 = rint(edge/scale); if q0 ≠ 0 then scale = edge/q0 and bias = edge, else
 * bias = 0 (1 bit: scale = max(max − min, 1e-7) and bias = min, no edge); codes rint((w − bias)/scale) clamped to 0..2^bits−1 (a NaN code is 0). Scales and
 * biases are then stored in w's dtype. The outputs (and the SIMD path's intermediates) are made
 * by `arrays` (quant/arrays.ts: fresh by default; reused, they are good until its next call).
 */
export function mlxAffineQuantize(w: MlxFloatTensor, bits: number, groupSize: number, arrays: Arrays = freshArrays): MlxAffineQuantized {
  const refusal = mlxAffineRefusal(bits, groupSize);
  if (refusal) throw new KquantError(refusal);
  const [rows, cols] = mlxRowsCols(w, groupSize);
  const nBins = (1 << bits) - 1;
  const groups = (rows * cols) / groupSize;
  const wordsPerRow = (cols * bits) / 32;
  const wq = arrays("wq", Uint32Array, rows * wordsPerRow);
  const sShape = [...w.shape.slice(0, -1), cols / groupSize];
  const output = (scales: ArrayLike<number>, biases: ArrayLike<number>): MlxAffineQuantized => ({
    wq,
    wqShape: [...w.shape.slice(0, -1), wordsPerRow],
    scales: { dtype: w.dtype, shape: sShape, data: storeAs(scales, w.dtype, arrays, "scales") },
    biases: { dtype: w.dtype, shape: sShape, data: storeAs(biases, w.dtype, arrays, "biases") },
  });
  // Every step on SIMD (16-bit data widened in the module) where no group holds NaN or ±Inf.
  const src = w.dtype === "float32" ? (w.data as Float32Array) : { bits: w.data as Uint16Array, kind: w.dtype };
  const fs = arrays("fs", Float32Array, groups);
  const fb = arrays("fb", Float32Array, groups);
  const direct = bits === 4 || bits === 8; // codes that are their own packing (4: by pack_pairs)
  const codesOut = direct ? new Uint8Array(wq.buffer, wq.byteOffset, wq.byteLength) : arrays("codes", Uint8Array, rows * cols);
  if (simdAffine(src, groupSize, bits, bits === 4, codesOut, fs, fb)) {
    if (!direct) packCodes(codesOut, bits, wq.fill(0));
    return output(fs, fb);
  }
  wq.fill(0);
  const x = valuesOf(w.data, w.dtype);
  const scales = new Float64Array(groups);
  const biases = new Float64Array(groups);
  // The scalar twin of simdAffine (no SIMD, or a group holding NaN or ±Inf, whose min / max skip them).
  for (let g = 0; g < groups; g++) {
    const start = g * groupSize;
    let max = -Infinity;
    let min = Infinity;
    for (let j = 0; j < groupSize; j++) {
      const v = x[start + j]!;
      if (max < v) max = v; // std::max(max, v): a NaN v is skipped
      if (v < min) min = v;
    }
    let scale = Math.fround(Math.fround(max - min) / nBins);
    if (scale < EPS) scale = EPS; // std::max(scale, eps): a NaN scale stays
    let bias = 0;
    if (bits === 1) {
      // One bit: the two levels are min and min + scale (MLX 0.32.4, found by running it).
      bias = min;
    } else {
      const mask = Math.abs(min) > Math.abs(max);
      if (!mask) scale = -scale;
      const edge = mask ? min : max;
      const q0 = rint(Math.fround(edge / scale));
      if (q0 !== 0) {
        // a NaN q0 is not 0 either
        scale = Math.fround(edge / q0);
        bias = edge;
      }
    }
    scales[g] = scale;
    biases[g] = bias;
  }
  const codes = new Uint8Array(rows * cols);
  for (let g = 0; g < groups; g++) {
    const start = g * groupSize;
    const scale = scales[g]!;
    const bias = biases[g]!;
    for (let j = 0; j < groupSize; j++) {
      const q = rint(Math.fround(Math.fround(x[start + j]! - bias) / scale));
      codes[start + j] = q < 0 ? 0 : nBins < q ? nBins : Number.isNaN(q) ? 0 : q;
    }
  }
  packCodes(codes, bits, wq);
  return output(scales, biases);
}

/** Codes of `bits` bits into the little-endian word stream (element i at bit i·bits; 3-, 5- and 6-bit codes cross words). */
function packCodes(codes: Uint8Array, bits: number, wq: Uint32Array): void {
  for (let i = 0; i < codes.length; i++) {
    const q = codes[i]!;
    const bit = i * bits;
    const word = bit >>> 5;
    const shift = bit & 31;
    wq[word] = (wq[word]! | (q << shift)) >>> 0;
    if (shift + bits > 32) wq[word + 1] = (wq[word + 1]! | (q >>> (32 - shift))) >>> 0;
  }
}

/** The codes of a packed affine tensor: element i at bit i·bits of the little-endian word stream. */
export function mlxUnpackCodes(wq: Uint32Array, count: number, bits: number): Uint8Array {
  const out = new Uint8Array(count);
  const mask = (1 << bits) - 1;
  for (let i = 0; i < count; i++) {
    const bit = i * bits;
    const word = bit >>> 5;
    const shift = bit & 31;
    let v = wq[word]! >>> shift;
    if (shift + bits > 32) v |= wq[word + 1]! << (32 - shift);
    out[i] = v & mask;
  }
  return out;
}

/**
 * mx.dequantize(wq, scales, biases, groupSize, bits, mode="affine") on the CPU: w = scales · u + biases
 * in the scales' dtype, the product and the sum each stored in that dtype. Output shape
 * [rows, cols] with cols = words·32/bits.
 */
export function mlxAffineDequantize(
  wq: Uint32Array,
  wqShape: readonly number[],
  scales: MlxFloatTensor,
  biases: MlxFloatTensor,
  bits: number,
  groupSize: number,
): MlxFloatTensor {
  const refusal = mlxAffineRefusal(bits, groupSize);
  if (refusal) throw new KquantError(refusal);
  if (scales.dtype !== biases.dtype) throw new KquantError(`scales are ${scales.dtype} but biases ${biases.dtype}`);
  const cols = (wqShape[wqShape.length - 1]! * 32) / bits;
  const count = wq.length * (32 / bits);
  if (scales.data.length * groupSize !== count || biases.data.length !== scales.data.length) {
    throw new KquantError(`scales and biases hold ${scales.data.length} and ${biases.data.length} groups of ${groupSize}, the codes ${count} values`);
  }
  const dtype = scales.dtype;
  const s = valuesOf(scales.data, dtype);
  const b = valuesOf(biases.data, dtype);
  const u = mlxUnpackCodes(wq, count, bits);
  const out = new Float64Array(count);
  const round = rounderOf(dtype);
  for (let i = 0; i < count; i++) {
    const g = Math.floor(i / groupSize);
    out[i] = round(round(u[i]! * s[g]!) + b[g]!);
  }
  return { dtype, shape: [...wqShape.slice(0, -1), cols], data: storeAs(out, dtype) };
}
