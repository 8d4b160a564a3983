/**
 * What a float32 `keras.layers.Dense(units)` holds after `layer.quantize(mode[, config])` in
 * Keras 3.15.1, for a kernel of shape (input_dim, units): the variables, under Keras's names,
 * with Keras's shapes, dtypes and bytes (fixtures/keras/gen_dense.py pins every case).
 *
 *   mode                                            variables (in = input_dim, out = units, B = block size)
 *   "int8"                                          kernel int8 (in, out), kernel_scale float32 (out,)
 *   "int4", blockSize null or -1 (per channel)      kernel int8 (in, ceil(out/2)), kernel_scale float32 (out,)
 *   "int4", blockSize B (default 128, as Keras's    kernel int8 (in, ceil(out/2)), kernel_scale float32 (ceil(in/B), out),
 *     `layer.quantize("int4")`)                     kernel_zero int8 (ceil(in/B), out), g_idx float32 (in,) = floor(i/B)
 *
 * The int4 kernel is packed along its LAST axis (units): byte (i, j) holds unit 2j in the low
 * nibble and unit 2j+1 in the high one; an odd `units` leaves the last high nibble 0.
 *
 * Dense.quantize computes with `to_numpy=True`: numpy arithmetic whatever the backend, so the
 * stored bytes do not depend on the backend (measured on tensorflow, torch, jax and numpy:
 * identical) and this function takes no backend. Two consequences:
 * - int8 and per-channel int4 are abs-max along axis 0 (`scale = top / (max|x| + 1e-7)`,
 *   `q = clip(round(x * scale))`), the same float32 operations as absmax.ts, which flushes
 *   subnormals like XLA and numpy does not. The flush cannot change a stored byte: the scale is
 *   never subnormal (top / (amax + 1e-7) ≥ 7 / 3.5e38), adding 1e-7 absorbs a subnormal amax
 *   either way, and a subnormal x times a scale ≤ 127 / 1e-7 is below 2e-29 and rounds to 0.
 * - grouped int4 is the numpy path of `abs_max_quantize_grouped_with_zero_point`, which is NOT
 *   the tensor path grouped.ts implements; quantizeGroupedNumpy below is that difference.
 *
 * NaN and ±Inf give numpy's bytes on x86-64 (a NaN becomes int8 0; the vectors pin it), except
 * that a NaN scale is written as +qNaN 0x7FC00000 where numpy would carry the input NaN's payload.
 *
 * A bfloat16 / float16 kernel assigned to a float32 layer is cast to float32 (exactly) before
 * quantizing, so convert such kernels with `toFloat32` first: the bytes are the same.
 */
import { KquantError } from "../errors.js";
import { absMaxQuantize, DEFAULT_EPSILON, DEFAULT_NAN, POSITIVE_QNAN, ROUND_MAGIC } from "./absmax.js";
import { packNibbles } from "./int4.js";
import type { Tensor } from "./tensor.js";

/** The Dense.quantize modes that store integer kernels (float8 stores no quantized kernel). */
export type DenseQuantMode = "int8" | "int4";

export interface DenseQuantOptions {
  mode: DenseQuantMode;
  /**
   * int4 only, as `Int4QuantizationConfig(block_size=...)`: a positive integer groups that many
   * input rows; null or -1 quantizes per channel; omitted means 128, Keras's default (what a
   * plain `layer.quantize("int4")` uses).
   */
  blockSize?: number | null;
}

/** The variables of a quantized Dense layer, in Keras's order (kernel, kernel_scale[, kernel_zero, g_idx]). */
export interface DenseQuantVariables {
  kernel: Tensor<Int8Array>;
  kernel_scale: Tensor<Float32Array>;
  /** Grouped int4 only. */
  kernel_zero?: Tensor<Int8Array>;
  /** Grouped int4 only. */
  g_idx?: Tensor<Float32Array>;
}

/** Keras's `Int4QuantizationConfig` default block size. */
export const KERAS_INT4_BLOCK_SIZE = 128;

const WHAT = "Dense.quantize";

/**
 * `keras.layers.Dense(units, dtype="float32")` built on `input_dim`, holding `kernel`
 * (row-major (input_dim, units) float32), after `quantize(mode[, config])`: the variables it stores.
 */
export function quantizeDenseKernel(
  kernel: Float32Array,
  shape: readonly [number, number],
  opts: DenseQuantOptions,
): DenseQuantVariables {
  const [inputDim, units] = shape;
  if (shape.length !== 2 || !(Number.isInteger(inputDim) && inputDim > 0 && Number.isInteger(units) && units > 0)) {
    throw new KquantError(`${WHAT}: a Dense kernel is (input_dim, units) with both > 0, got ${JSON.stringify(shape)}`);
  }
  if (kernel.length !== inputDim * units) {
    throw new KquantError(`${WHAT}: kernel has ${kernel.length} values, shape ${JSON.stringify(shape)} needs ${inputDim * units}`);
  }
  const source: Tensor = { dtype: "float32", shape: [inputDim, units], data: kernel };
  if (opts.mode === "int8") {
    if (opts.blockSize !== undefined && opts.blockSize !== null) {
      throw new KquantError(`${WHAT}: int8 takes no block size (Keras quantizes int8 per output unit)`);
    }
    const { values, scale } = absMaxQuantize(source, 0, { valueRange: [-127, 127], dtype: "int8", backend: "numpy" });
    return {
      kernel: { dtype: "int8", shape: [inputDim, units], data: values.data as Int8Array },
      kernel_scale: { dtype: "float32", shape: [units], data: scale.data },
    };
  }
  if (opts.mode !== "int4") throw new KquantError(`${WHAT}: mode must be int8 or int4, got ${String(opts.mode)}`);
  const blockSize = opts.blockSize === undefined ? KERAS_INT4_BLOCK_SIZE : opts.blockSize;
  if (blockSize === null || blockSize === -1) {
    const { values, scale } = absMaxQuantize(source, 0, { valueRange: [-8, 7], dtype: "int8", backend: "numpy" });
    return {
      kernel: packLastAxis(values.data as Int8Array, inputDim, units),
      kernel_scale: { dtype: "float32", shape: [units], data: scale.data },
    };
  }
  if (!Number.isInteger(blockSize) || blockSize <= 0) {
    throw new KquantError(`${WHAT}: block size must be a positive integer, null or -1, got ${blockSize}`);
  }
  const nGroups = Math.ceil(inputDim / blockSize);
  const { values, scale, zero } = quantizeGroupedNumpy(kernel, inputDim, units, blockSize);
  const gIdx = new Float32Array(inputDim);
  for (let i = 0; i < inputDim; i++) gIdx[i] = Math.floor(i / blockSize);
  return {
    kernel: packLastAxis(values, inputDim, units),
    kernel_scale: { dtype: "float32", shape: [nGroups, units], data: scale },
    kernel_zero: { dtype: "int8", shape: [nGroups, units], data: zero },
    g_idx: { dtype: "float32", shape: [inputDim], data: gIdx },
  };
}

/** `pack_int4(values, axis=-1)`: (rows, cols) int4 in int8 → (rows, ceil(cols/2)) int8. */
function packLastAxis(values: Int8Array, rows: number, cols: number): Tensor<Int8Array> {
  const packedCols = (cols + 1) >> 1;
  const out = new Int8Array(rows * packedCols);
  packNibbles(values, [rows, cols], 1, out);
  return { dtype: "int8", shape: [rows, packedCols], data: out };
}

/**
 * The numpy path of `abs_max_quantize_grouped_with_zero_point(x, block_size, (-8, 7), "int8",
 * 1e-7, to_numpy=True)`, which Dense.quantize takes. Where it parts from the tensor path
 * (grouped.ts), on purpose:
 * - rows are zero-padded to a multiple of the block size BEFORE min/max whenever the input dim
 *   does not divide, even with a single group, so 0 is inside the last group's range;
 * - min == max is not widened to ±1 and there is no 1e-8 floor: scale = (max - min + 1e-7) / 15;
 * - IEEE division by 15 and by the scale (XLA multiplies by float32 reciprocals instead);
 * - no flush of subnormals (numpy keeps them).
 * Every step is one float32 op: the scale is Math.fround of the double op (exact for - + /).
 * The zero point and the values are integers clipped to [-8, 7]: round(p) + z in double has
 * the same side of the clip bounds as numpy's float32 sum, so no fround is needed there, and
 * NaN stores as 0 as numpy's float→int8 cast gives on x86-64. A NaN scale gets numpy's bits:
 * the input's NaN propagated (+qNaN 0x7FC00000 is all kquant writes) or, from Inf - Inf,
 * x86's default NaN 0xFFC00000.
 * `x` is row-major (rows, cols), grouped along the rows; values come back unpacked, (rows, cols);
 * scale and zero are (ceil(rows / blockSize), cols).
 */
export function quantizeGroupedNumpy(
  x: Float32Array,
  rows: number,
  cols: number,
  blockSize: number,
): { values: Int8Array; scale: Float32Array; zero: Int8Array } {
  const nGroups = Math.ceil(rows / blockSize);
  const lo = new Float32Array(nGroups * cols).fill(Infinity);
  const hi = new Float32Array(nGroups * cols).fill(-Infinity);
  const nan = new Uint8Array(nGroups * cols);
  for (let r = 0; r < rows; r++) minMaxRow(x, r * cols, cols, lo, hi, nan, Math.floor(r / blockSize) * cols);
  if (rows % blockSize !== 0) {
    const last = (nGroups - 1) * cols;
    for (let c = 0; c < cols; c++) {
      if (lo[last + c]! > 0) lo[last + c] = 0;
      if (hi[last + c]! < 0) hi[last + c] = 0;
    }
  }
  const eps = Math.fround(DEFAULT_EPSILON);
  const scale = new Float32Array(nGroups * cols);
  const scaleBits = new Uint32Array(scale.buffer);
  const zero = new Int8Array(nGroups * cols);
  const M = ROUND_MAGIC;
  for (let i = 0; i < scale.length; i++) {
    if (nan[i]) {
      scaleBits[i] = POSITIVE_QNAN; // zero: round(NaN) cast to int8 is 0, as the array already holds
      continue;
    }
    const s = Math.fround(Math.fround(Math.fround(hi[i]! - lo[i]!) + eps) / 15);
    if (s !== s) scaleBits[i] = DEFAULT_NAN;
    else scale[i] = s;
    zero[i] = Math.min(Math.max(Math.fround(-lo[i]! / s) + M - M - 8, -8), 7);
  }
  const values = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) quantizeRow(x, r * cols, cols, scale, zero, Math.floor(r / blockSize) * cols, values);
  return { values, scale, zero };
}

// The two per-row loops are functions of their own: V8 optimises a small hot loop far better
// than the same loop inside the large caller (as measured for grouped.ts).

/** Min, max and NaN flags of one kernel row, into its group's entries starting at `g`. */
function minMaxRow(x: Float32Array, row: number, cols: number, lo: Float32Array, hi: Float32Array, nan: Uint8Array, g: number): void {
  for (let c = 0; c < cols; c++) {
    const v = x[row + c]!;
    if (v < lo[g + c]!) lo[g + c] = v;
    if (v > hi[g + c]!) hi[g + c] = v;
    if (v !== v) nan[g + c] = 1;
  }
}

/** clip(round(x / scale) + zero, -8, 7) for one kernel row (see quantizeGroupedNumpy). */
function quantizeRow(x: Float32Array, row: number, cols: number, scale: Float32Array, zero: Int8Array, g: number, out: Int8Array): void {
  const M = ROUND_MAGIC;
  for (let c = 0; c < cols; c++) {
    const q = Math.fround(x[row + c]! / scale[g + c]!) + M - M + zero[g + c]!;
    out[row + c] = Math.min(Math.max(q, -8), 7);
  }
}
