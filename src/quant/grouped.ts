/**
 * `keras.quantizers.abs_max_quantize_grouped_with_zero_point` on a float32 [rows, cols] tensor,
 * bit-exact with Keras 3.15.1's DEFAULT path (to_numpy=False), which goes through
 * `compute_quantization_parameters(transpose(x), bits, symmetric=False, per_channel=True,
 * group_size=block_size, epsilon, signed=True)`. Groups are `blockSize` consecutive rows.
 *
 * Quirks of that path that we reproduce on purpose:
 * - `bits = int(log2(qmax - qmin + 1))`; the zero point uses the *signed* range of that many
 *   bits, [-2^(bits-1), 2^(bits-1) - 1], whatever value_range says; only the final clip of the
 *   values uses value_range. So (-127, 127) gives bits 7 and zero points in [-64, 63], and
 *   (0, 15) gives zero points in [-8, 7].
 * - With more than one group the last, partial group is zero-padded BEFORE min/max, so 0 is
 *   always inside its range; with a single group (rows <= blockSize) min/max see only the real
 *   rows.
 * - min == max widens to [min - 1, max + 1]; epsilon is added to (max - min) only if > 0;
 *   scale = range / (2^bits - 1), replaced by float32(1e-8) where <= 0.
 * - zero = clip(round(-min / scale) + qmin, qmin, qmax_signed) cast to int8 (saturating,
 *   NaN → 0); values = cast(clip(round(x / scale) + zero, value_range), dtype).
 * - All arithmetic is float32 with XLA:CPU's flush-to-zero / denormals-are-zero.
 * - XLA rewrites a division by a broadcast operand into a multiplication by its float32
 *   reciprocal (jnp.divide is jitted, so the broadcast and the divide are one computation).
 *   range / maxq and x / scale[group] are therefore range * f32(1/maxq) and
 *   x * f32(1/scale), which differ from IEEE division in the last bit; -min / scale divides
 *   two same-shape arrays and stays a true division.
 *
 * The numpy path (to_numpy=True) differs and is NOT what this implements: it always pads
 * before min/max (also for a single group), skips the min == max widening and the 1e-8 floor,
 * divides by (qmax - qmin) from value_range and uses value_range's qmin for the zero point,
 * and computes without flushing subnormals. For value_range (-8, 7) and columns whose min != max
 * the two paths agree (gen_grouped.py records both to show where they split).
 *
 * NaN bit patterns in `scale`: a group holding a NaN gets +qNaN 0x7FC00000 (Keras carries the
 * input NaN's sign and payload instead); Inf - Inf gives x86's default NaN 0xFFC00000.
 */
import { KquantError } from "../errors.js";
import { roundHalfEven } from "./round.js";
import { simdGroupMinMax, simdQuantizeGroupedInt8 } from "./wasm/kernels.js";
import type { Tensor } from "./tensor.js";
import {
  DEFAULT_EPSILON,
  DEFAULT_NAN,
  POSITIVE_QNAN,
  ROUND_MAGIC,
  allocQuant,
  checkQuantDType,
  clipBounds,
  float32Data,
  type QuantArray,
  type QuantDType,
} from "./absmax.js";
import { MIN_NORMAL, f32Add, f32Div, f32Mul, f32Sub, flushSubnormal } from "./f32.js";

export interface GroupedOptions {
  valueRange?: readonly [number, number];
  dtype?: QuantDType;
  epsilon?: number;
}

export interface GroupedResult {
  values: Tensor<QuantArray>;
  /** [nGroups, cols] float32. */
  scale: Tensor<Float32Array>;
  /** [nGroups, cols] int8. */
  zeroPoint: Tensor<Int8Array>;
}

const WHAT = "abs_max_quantize_grouped_with_zero_point";

export function absMaxQuantizeGroupedWithZeroPoint(
  inputs: Tensor,
  blockSize: number,
  opts: GroupedOptions = {},
): GroupedResult {
  const data = float32Data(inputs, WHAT);
  if (inputs.shape.length !== 2) {
    throw new KquantError(`${WHAT}: expected a 2-D tensor, got shape ${JSON.stringify(inputs.shape)}`);
  }
  const [rows, cols] = inputs.shape as [number, number];
  if (rows === 0 || cols === 0) throw new KquantError(`${WHAT}: input tensor cannot be empty`);
  if (!Number.isInteger(blockSize) || blockSize <= 0) {
    throw new KquantError(`${WHAT}: block size must be a positive integer, got ${blockSize}`);
  }
  const valueRange = opts.valueRange ?? [-8, 7];
  const dtype = checkQuantDType(opts.dtype ?? "int8", WHAT);
  const epsilon = opts.epsilon ?? DEFAULT_EPSILON;
  const levels = valueRange[1] - valueRange[0] + 1;
  if (!(levels >= 2)) {
    throw new KquantError(`${WHAT}: value range ${JSON.stringify(valueRange)} has fewer than 2 levels`);
  }
  const bits = Math.floor(Math.log2(levels));
  const qminSigned = -(2 ** (bits - 1));
  const qmaxSigned = 2 ** (bits - 1) - 1;
  const invMaxq = Math.fround(1 / Math.fround(2 ** bits - 1));
  const nGroups = Math.ceil(rows / blockSize);

  const lo = new Float32Array(nGroups * cols).fill(Infinity);
  const hi = new Float32Array(nGroups * cols).fill(-Infinity);
  groupMinMax(data, rows, cols, blockSize, lo, hi);
  if (nGroups > 1 && rows % blockSize !== 0) {
    const base = (nGroups - 1) * cols;
    for (let c = 0; c < cols; c++) {
      lo[base + c] = Math.min(lo[base + c]!, 0);
      hi[base + c] = Math.max(hi[base + c]!, 0);
    }
  }

  const scale = new Float32Array(nGroups * cols);
  const scaleBits = new Uint32Array(scale.buffer);
  const zero = new Int8Array(nGroups * cols);
  const eps = epsilon > 0 ? flushSubnormal(Math.fround(epsilon)) : 0;
  const floor = Math.fround(1e-8);
  // The zero point is cast to int8, which saturates; clamping the clip bounds does the same.
  const zLo = Math.max(qminSigned, -128);
  const zHi = Math.min(qmaxSigned, 127);
  for (let i = 0; i < scale.length; i++) {
    let mn = lo[i]!;
    let mx = hi[i]!;
    if (mn === mx) {
      mn = f32Sub(mn, 1);
      mx = f32Add(mx, 1);
    }
    let range = f32Sub(mx, mn);
    if (epsilon > 0) range = f32Add(range, eps);
    let s = f32Mul(range, invMaxq);
    if (s <= 0) s = floor;
    if (s !== s) scaleBits[i] = mn !== mn || mx !== mx ? POSITIVE_QNAN : DEFAULT_NAN;
    else scale[i] = s;
    const z = f32Add(roundHalfEven(f32Div(-mn, s)), qminSigned);
    zero[i] = Math.min(Math.max(z, zLo), zHi);
  }

  const inv = new Float32Array(scale.length);
  for (let i = 0; i < inv.length; i++) inv[i] = f32Div(1, scale[i]!);
  const out = allocQuant(dtype, rows * cols);
  const [vlo, vhi] = clipBounds(valueRange, dtype);
  if (out instanceof Float32Array) {
    for (let r = 0; r < rows; r++) {
      const base = Math.floor(r / blockSize) * cols;
      const row = r * cols;
      for (let c = 0; c < cols; c++) {
        const v = data[row + c]!;
        const x = v < MIN_NORMAL && v > -MIN_NORMAL ? 0 : v;
        // A subnormal product rounds to ±0 either way, so it needs no flush before rounding.
        const q = Math.fround(roundHalfEven(Math.fround(x * inv[base + c]!)) + zero[base + c]!);
        out[row + c] = Math.min(Math.max(q, vlo), vhi);
      }
    }
  } else {
    quantizeGroupedInt(data, rows, cols, blockSize, inv, zero, vlo, vhi, out);
  }
  if (out instanceof Float32Array) {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < out.length; i++) {
      const v = out[i]!;
      if (v !== v) {
        const g = Math.floor(Math.floor(i / cols) / blockSize) * cols + (i % cols);
        bits[i] = scale[g]! !== scale[g]! ? POSITIVE_QNAN : DEFAULT_NAN;
      }
    }
  }
  return {
    values: { dtype, shape: [rows, cols], data: out },
    scale: { dtype: "float32", shape: [nGroups, cols], data: scale },
    zeroPoint: { dtype: "int8", shape: [nGroups, cols], data: zero },
  };
}

/**
 * Per (group, column): min and max of the flushed inputs (NaN wins, as jnp.min/max). A function
 * of its own, as is the quantize loop: inside the large caller V8 optimised both loops far worse.
 */
function groupMinMax(data: Float32Array, rows: number, cols: number, blockSize: number, lo: Float32Array, hi: Float32Array): void {
  // Math.min/max on float32 arrays cost V8 ~11 ns per element here; f32x4.min/max are the same ops.
  if (simdGroupMinMax(data, rows, cols, blockSize, lo, hi)) return;
  for (let r = 0; r < rows; r++) {
    const base = Math.floor(r / blockSize) * cols;
    const row = r * cols;
    for (let c = 0; c < cols; c++) {
      const v = data[row + c]!;
      const x = v < MIN_NORMAL && v > -MIN_NORMAL ? 0 : v;
      lo[base + c] = Math.min(lo[base + c]!, x);
      hi[base + c] = Math.max(hi[base + c]!, x);
    }
  }
}

/**
 * Integer outputs: the magic-number rounding of absmax.ts (same reasoning: beyond 2^51 the clamp
 * hides the difference, NaN passes Math.min/max and stores as 0; a ternary clamp would send the
 * store through V8's slow truncation). The input flush only matters when some inv · 2^-126 can
 * exceed 0.5: otherwise a subnormal's product rounds to ±0 and adds nothing to the zero point.
 */
function quantizeGroupedInt(
  data: Float32Array,
  rows: number,
  cols: number,
  blockSize: number,
  inv: Float32Array,
  zero: Int8Array,
  vlo: number,
  vhi: number,
  out: QuantArray,
): void {
  if (out instanceof Int8Array && simdQuantizeGroupedInt8(data, rows, cols, blockSize, inv, zero, vlo, vhi, out)) return;
  const M = ROUND_MAGIC;
  const flush = !inv.every((s) => s * MIN_NORMAL <= 0.5);
  for (let r = 0; r < rows; r++) {
    const base = Math.floor(r / blockSize) * cols;
    const row = r * cols;
    if (flush) {
      for (let c = 0; c < cols; c++) {
        const v = data[row + c]!;
        const x = v < MIN_NORMAL && v > -MIN_NORMAL ? 0 : v;
        out[row + c] = Math.min(Math.max(Math.fround(Math.fround(x * inv[base + c]!) + M - M + zero[base + c]!), vlo), vhi);
      }
    } else {
      for (let c = 0; c < cols; c++) {
        out[row + c] = Math.min(Math.max(Math.fround(Math.fround(data[row + c]! * inv[base + c]!) + M - M + zero[base + c]!), vlo), vhi);
      }
    }
  }
}
