/**
 * `keras.quantizers.abs_max_quantize_grouped_with_zero_point` on a float32 [rows, cols] tensor,
 * bit-exact with Keras 3.15.1's DEFAULT path (to_numpy=False) on each CPU backend (`backend`,
 * default tensorflow), which goes through
 * `compute_quantization_parameters(transpose(x), bits, symmetric=False, per_channel=True,
 * group_size=block_size, epsilon, signed=True)`. Groups are `blockSize` consecutive rows.
 *
 * With `axis: 1` the groups are `blockSize` consecutive elements of each row instead (PyTorch's
 * (out, in) layout grouped along its last axis), and the result is exactly Keras's result on the
 * transposed input, transposed back: scale and zero are [rows, nGroups]. Every per-group float32
 * operation is the same; only the walk over memory differs, so no transpose is needed.
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
 * - All arithmetic is float32; tensorflow and jax flush subnormals (flush-to-zero /
 *   denormals-are-zero), torch and numpy keep them (a subnormal column's range is then not 0).
 * - jax only: XLA rewrites a division by a broadcast operand into a multiplication by its
 *   float32 reciprocal (jnp.divide is jitted, so the broadcast and the divide are one
 *   computation). range / maxq and x / scale[group] are therefore range * f32(1/maxq) and
 *   x * f32(1/scale), which differ from IEEE division in the last bit; -min / scale divides
 *   two same-shape arrays and stays a true division. The other backends divide exactly.
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
import { groupCount, padLastGroups, type GroupLayout, type GroupRule } from "./groups.js";
import { roundHalfEven } from "./round.js";
import type { Float32Source } from "./wasm/kernels.js";
import {
  simdGroupMinMax,
  simdGroupParameters,
  simdQuantizeGroupedInt8,
  simdRowGroupMinMax,
  simdRowGroupedQuantize,
} from "./wasm/grouped-kernels.js";
import type { Tensor } from "./tensor.js";
import {
  DEFAULT_EPSILON,
  DEFAULT_NAN,
  POSITIVE_QNAN,
  ROUND_MAGIC,
  outArray,
  checkQuantDType,
  backendDType,
  clipBounds,
  float32Data,
  type QuantArray,
  type QuantDType,
} from "./absmax.js";
import { MIN_NORMAL, f32Arith } from "./f32.js";
import { behaviourOf, type KerasBackend } from "./backend.js";

export interface GroupedOptions {
  valueRange?: readonly [number, number];
  dtype?: QuantDType;
  epsilon?: number;
  /** The axis the groups run along: 0 (Keras's (in, out) kernel, the default) or 1 (the last axis). */
  axis?: 0 | 1;
  /** An array to write the values into instead of allocating (the output dtype's type, rows × cols long). */
  out?: QuantArray;
  /** The Keras backend whose arithmetic to reproduce (default tensorflow, Keras's default). */
  backend?: KerasBackend;
}

export interface GroupedResult {
  values: Tensor<QuantArray>;
  /** [nGroups, cols] float32 for axis 0, [rows, nGroups] for axis 1. */
  scale: Tensor<Float32Array>;
  /** int8, shaped as `scale`. */
  zeroPoint: Tensor<Int8Array>;
}

const WHAT = "abs_max_quantize_grouped_with_zero_point";

function forEachRun(L: GroupLayout, visit: (start: number, len: number, p: number, step: number) => void): void {
  const { rows, cols, blockSize, nGroups } = L;
  if (!L.alongLast) {
    for (let r = 0; r < rows; r++) visit(r * cols, cols, Math.floor(r / blockSize) * cols, 1);
    return;
  }
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < nGroups; g++) {
      const c0 = g * blockSize;
      visit(r * cols + c0, Math.min(blockSize, cols - c0), r * nGroups + g, 0);
    }
  }
}

/** What every grouped path derives from the shape, block size and options (validated once here). */
interface GroupedSetup {
  rows: number;
  cols: number;
  alongLast: boolean;
  nGroups: number;
  dtype: QuantDType;
  rule: GroupRule;
  /** The values' clip bounds. */
  vlo: number;
  vhi: number;
  /** Whether this backend's integer cast of NaN is something kquant reproduces. */
  castsNaN: boolean;
}

function groupedSetup(shape: readonly number[], blockSize: number, opts: GroupedOptions): GroupedSetup {
  if (shape.length !== 2) {
    throw new KquantError(`${WHAT}: expected a 2-D tensor, got shape ${JSON.stringify(shape)}`);
  }
  const [rows, cols] = shape as [number, number];
  if (rows === 0 || cols === 0) throw new KquantError(`${WHAT}: input tensor cannot be empty`);
  if (!Number.isInteger(blockSize) || blockSize <= 0) {
    throw new KquantError(`${WHAT}: block size must be a positive integer, got ${blockSize}`);
  }
  const axis = opts.axis ?? 0;
  if (axis !== 0 && axis !== 1) throw new KquantError(`${WHAT}: axis must be 0 or 1, got ${String(axis)}`);
  const valueRange = opts.valueRange ?? [-8, 7];
  const b = behaviourOf(opts.backend, WHAT);
  const f = f32Arith(b.flushSubnormals);
  const dtype = backendDType(checkQuantDType(opts.dtype ?? "int8", WHAT), valueRange, b, WHAT);
  const epsilon = opts.epsilon ?? DEFAULT_EPSILON;
  const levels = valueRange[1] - valueRange[0] + 1;
  if (!(levels >= 2)) {
    throw new KquantError(`${WHAT}: value range ${JSON.stringify(valueRange)} has fewer than 2 levels`);
  }
  const bits = Math.floor(Math.log2(levels));
  const qminSigned = -(2 ** (bits - 1));
  const qmaxSigned = 2 ** (bits - 1) - 1;
  const maxq = Math.fround(2 ** bits - 1);
  const alongLast = axis === 1;
  // The zero point is cast to int8, which saturates (clamping the clip bounds does the same) or
  // wraps (torch, numpy: the Int8Array store wraps as their C cast does). TensorFlow's cast of
  // what int8 cannot hold depends on the element's position (8-wide packets saturate, NaN
  // included, the tail wraps), so kquant refuses to guess there.
  const wrap = b.intCast === "wrap";
  if (!b.outOfRangeCast && qminSigned < -128) {
    throw new KquantError(`${WHAT}: value range ${JSON.stringify(valueRange)} makes ${bits}-bit zero points, beyond int8; this backend's cast of them depends on the element's position, so no bytes would match`);
  }
  const rule: GroupRule = {
    tiny: b.flushSubnormals ? MIN_NORMAL : 0,
    divide: b.divide === "exact",
    maxq,
    invMaxq: Math.fround(1 / maxq),
    eps: epsilon > 0 ? f.flush(Math.fround(epsilon)) : 0,
    qminSigned,
    zLo: wrap ? qminSigned : Math.max(qminSigned, -128),
    zHi: wrap ? qmaxSigned : Math.min(qmaxSigned, 127),
  };
  const [vlo, vhi] = clipBounds(valueRange, dtype, b.flushSubnormals, wrap);
  return { rows, cols, alongLast, nGroups: groupCount(alongLast ? cols : rows, blockSize), dtype, rule, vlo, vhi, castsNaN: b.outOfRangeCast };
}

/** Throws where a NaN or Inf would reach an integer cast that this backend does not make reproducible. */
function refuseNaNCastOf(setup: GroupedSetup, nonFinite: boolean): void {
  if (nonFinite && !setup.castsNaN && setup.dtype !== "float32") {
    throw new KquantError(`${WHAT}: NaN or Inf in the input (it sends NaN to the integer cast); this backend's cast of NaN depends on the element's position, so no bytes would match`);
  }
}

export function absMaxQuantizeGroupedWithZeroPoint(
  inputs: Tensor,
  blockSize: number,
  opts: GroupedOptions = {},
): GroupedResult {
  const data = float32Data(inputs, WHAT);
  const setup = groupedSetup(inputs.shape, blockSize, opts);
  const { rows, cols, alongLast, nGroups, dtype, rule, vlo, vhi } = setup;
  const others = alongLast ? rows : cols;
  const L: GroupLayout = { rows, cols, blockSize, nGroups, alongLast };
  const paramShape = alongLast ? [rows, nGroups] : [nGroups, cols];
  const out = outArray(opts.out, dtype, rows * cols, `${WHAT} values`);
  const result = (scale: Float32Array, zero: Int8Array): GroupedResult => ({
    values: { dtype, shape: [rows, cols], data: out },
    scale: { dtype: "float32", shape: paramShape, data: scale },
    zeroPoint: { dtype: "int8", shape: paramShape, data: zero },
  });

  if (alongLast && out instanceof Int8Array) {
    // Every step on one copy of each block of rows (grouped-kernels.ts), where SIMD applies.
    const scale = new Float32Array(rows * nGroups);
    const zero = new Int8Array(rows * nGroups);
    const nonFinite = simdRowGroupedQuantize(data, rows, cols, blockSize, rule, vlo, vhi, { values: out, packed: false, scale, zero });
    if (nonFinite !== null) {
      refuseNaNCastOf(setup, nonFinite);
      return result(scale, zero);
    }
  }

  const lo = new Float32Array(nGroups * others).fill(Infinity);
  const hi = new Float32Array(nGroups * others).fill(-Infinity);
  const simdMinMax = alongLast ? simdRowGroupMinMax : simdGroupMinMax;
  if (!simdMinMax(data, rows, cols, blockSize, lo, hi, rule.tiny > 0)) {
    // Math.min/max on float32 arrays cost V8 ~11 ns per element here; f32x4.min/max are the same ops.
    forEachRun(L, (start, len, p, step) => minMaxRun(data, start, len, lo, hi, p, step, rule.tiny));
  }
  padLastGroups(lo, hi, L);
  const params = groupParameters(lo, hi, rule);
  refuseNaNCastOf(setup, params.nonFinite);
  const { scale, zero, by } = params;
  const q: Quotient = { by, divide: rule.divide, tiny: rule.tiny };
  if (out instanceof Float32Array) {
    forEachRun(L, (start, len, p, step) => quantizeFloatRun(data, start, len, q, zero, p, step, vlo, vhi, out));
    const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    forEachRun(L, (start, len, p, step) => {
      for (let i = start, q = p; i < start + len; i++, q += step) {
        const v = out[i]!;
        if (v !== v) outBits[i] = scale[q]! !== scale[q]! ? POSITIVE_QNAN : DEFAULT_NAN;
      }
    });
  } else {
    quantizeGroupedInt(data, L, q, zero, vlo, vhi, out);
  }
  return result(scale, zero);
}

/**
 * Grouped int4 along the last axis (`axis: 1`), the codes packed two per byte along the row as
 * Keras's pack_int4 packs them, straight from `src`: float32 values, or float16 / bfloat16 bit
 * patterns (widened exactly, block by block). `into.values` holds rows × cols / 2 bytes,
 * `into.scale` / `into.zero` rows × ceil(cols / blockSize). The bits of
 * absMaxQuantizeGroupedWithZeroPoint followed by packInt4. Returns whether some group held NaN
 * or ±Inf (the values are then Keras's arithmetic on them, unchecked: callers refuse or redo
 * them with absMaxQuantizeGroupedWithZeroPoint), or null where this fused SIMD path does not
 * apply (no SIMD, an odd row, rows longer than 65536, a dtype or value range beyond int8).
 */
export function quantizeRowGroupedPacked(
  src: Float32Source,
  shape: readonly [number, number],
  blockSize: number,
  opts: Omit<GroupedOptions, "axis" | "out" | "dtype">,
  into: { values: Uint8Array; scale: Float32Array; zero: Int8Array },
): { nonFinite: boolean } | null {
  const setup = groupedSetup(shape, blockSize, { ...opts, axis: 1 });
  if (setup.dtype !== "int8") return null;
  const { rows, cols, rule, vlo, vhi } = setup;
  const nonFinite = simdRowGroupedQuantize(src, rows, cols, blockSize, rule, vlo, vhi, { ...into, packed: true });
  return nonFinite === null ? null : { nonFinite };
}

/** 2^23: a float32 at least this large is an integer, so it rounds to itself. */
const F32_INTEGERS = 8388608;

/**
 * Each group's scale, zero point and what x is divided by (the flushed scale) or multiplied with
 * (jax: the reciprocal), from its min `lo` and max `hi`, with Keras's float32 steps:
 * min == max widens by 1, range = max - min (+ eps), scale = range / maxq (jax: · f32(1/maxq)),
 * scale ≤ 0 → f32(1e-8), zero = clip(round(-min / scale) + qmin). One monomorphic loop over the
 * groups: each op is Math.fround of the double op, flushed through one comparison with `tiny`
 * (0 when the backend keeps subnormals), and round-half-even is (t + 1.5·2^52) - 1.5·2^52, exact
 * for |t| < 2^23 where a float32 can hold a fraction. 2M groups (256 MiB, groups of 32) took
 * ~360 ms through the generic per-op helpers and roundHalfEven; this is a few ns per group.
 * `nonFinite` says whether some group saw NaN or Inf.
 */
function groupParameters(lo: Float32Array, hi: Float32Array, r: GroupRule): { scale: Float32Array; zero: Int8Array; by: Float32Array; nonFinite: boolean } {
  const n = lo.length;
  const scale = new Float32Array(n);
  const zero = new Int8Array(n);
  const by = new Float32Array(n);
  const fast = simdGroupParameters(lo, hi, r, scale, zero, by);
  if (fast !== null) return { scale, zero, by, nonFinite: fast };
  const scaleBits = new Uint32Array(scale.buffer);
  const { tiny, divide, maxq, invMaxq, eps, qminSigned, zLo, zHi } = r;
  const floor = Math.fround(1e-8);
  const M = ROUND_MAGIC;
  let nonFinite = false;
  for (let i = 0; i < n; i++) {
    let mn = lo[i]!;
    let mx = hi[i]!;
    if (mn - mn !== 0 || mx - mx !== 0) nonFinite = true;
    if (mn === mx) {
      mn = Math.fround(mn - 1);
      if (mn < tiny && mn > -tiny) mn *= 0;
      mx = Math.fround(mx + 1);
      if (mx < tiny && mx > -tiny) mx *= 0;
    }
    let range = Math.fround(mx - mn);
    if (range < tiny && range > -tiny) range *= 0;
    if (eps > 0) {
      range = Math.fround(range + eps);
      if (range < tiny && range > -tiny) range *= 0;
    }
    let s = divide ? Math.fround(range / maxq) : Math.fround(range * invMaxq);
    if (s < tiny && s > -tiny) s *= 0;
    if (s <= 0) s = floor;
    if (s !== s) scaleBits[i] = mn !== mn || mx !== mx ? POSITIVE_QNAN : DEFAULT_NAN;
    else scale[i] = s;
    let t = Math.fround(-mn / s);
    if (t < tiny && t > -tiny) t *= 0;
    const rounded = t < F32_INTEGERS && t > -F32_INTEGERS ? t + M - M : t;
    // An integer plus qmin, rounded to float32 (past 2^24 it may not be exact) and never
    // subnormal. NaN passes min/max and stores as 0.
    zero[i] = Math.min(Math.max(Math.fround(rounded + qminSigned), zLo), zHi);
    // The divisor is the scale as an operand (flushed); jax's reciprocal is a float32 op of its own.
    if (divide) by[i] = s < tiny && s > -tiny ? s * 0 : s;
    else {
      const inv = Math.fround(1 / s);
      by[i] = inv < tiny && inv > -tiny ? inv * 0 : inv;
    }
  }
  return { scale, zero, by, nonFinite };
}

/**
 * Per group: min and max of the flushed inputs (NaN wins, as jnp.min/max) over one run. A
 * function of its own, as are the quantize loops: inside the large caller V8 optimised them far worse.
 */
function minMaxRun(data: Float32Array, start: number, len: number, lo: Float32Array, hi: Float32Array, p: number, step: number, tiny: number): void {
  const end = start + len;
  if (step === 0) {
    // Comparisons on the raw values, flushed once at the end: the flush is monotone, so it
    // commutes with min/max, and it sends -0 to +0, so no signed zero reaches the result. V8's
    // Math.min/max (signed-zero and NaN handling) and a per-element flush, whose 0 is a small
    // integer, made this loop ~10 ns per element. NaN, which comparisons skip, is kept aside.
    let mn = lo[p]!;
    let mx = hi[p]!;
    let nan = false;
    for (let i = start; i < end; i++) {
      const v = data[i]!;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
      if (v !== v) nan = true;
    }
    lo[p] = nan ? NaN : mn < tiny && mn > -tiny ? 0 : mn;
    hi[p] = nan ? NaN : mx < tiny && mx > -tiny ? 0 : mx;
    return;
  }
  for (let i = start, q = p; i < end; i++, q += step) {
    const v = data[i]!;
    const x = v < tiny && v > -tiny ? 0 : v;
    lo[q] = Math.min(lo[q]!, x);
    hi[q] = Math.max(hi[q]!, x);
  }
}

/** x's quotient by the group's scale: `by` holds divisors (`divide`) or jax's reciprocals; `tiny` the flush threshold. */
interface Quotient {
  by: Float32Array;
  divide: boolean;
  tiny: number;
}

function quantizeFloatRun(
  data: Float32Array,
  start: number,
  len: number,
  q: Quotient,
  zero: Int8Array,
  p: number,
  step: number,
  vlo: number,
  vhi: number,
  out: Float32Array,
): void {
  const { by, divide, tiny } = q;
  for (let i = start, g = p; i < start + len; i++, g += step) {
    const v = data[i]!;
    const x = v < tiny && v > -tiny ? 0 : v;
    // A subnormal quotient rounds to ±0 either way, so it needs no flush before rounding.
    const r = Math.fround(roundHalfEven(Math.fround(divide ? x / by[g]! : x * by[g]!)) + zero[g]!);
    out[i] = Math.min(Math.max(r, vlo), vhi);
  }
}

/**
 * Integer outputs: the magic-number rounding of absmax.ts (same reasoning: beyond 2^51 the clamp
 * hides the difference, NaN passes Math.min/max and stores as 0; a ternary clamp would send the
 * store through V8's slow truncation). The input flush only matters when some inv · 2^-126 can
 * exceed 0.5: otherwise a subnormal's product rounds to ±0 and adds nothing to the zero point.
 */
function quantizeGroupedInt(data: Float32Array, L: GroupLayout, q: Quotient, zero: Int8Array, vlo: number, vhi: number, out: QuantArray): void {
  const { rows, cols, blockSize } = L;
  const { by, divide, tiny } = q;
  // (int8 along the last axis went through simdRowGroupedQuantize already.)
  if (out instanceof Int8Array && !L.alongLast && simdQuantizeGroupedInt8(data, rows, cols, blockSize, by, zero, vlo, vhi, out, tiny > 0, divide)) return;
  const flush = tiny > 0 && !by.every((d) => (divide ? MIN_NORMAL / d : d * MIN_NORMAL) <= 0.5);
  const run = divide ? quantizeIntRunDividing : quantizeIntRun;
  forEachRun(L, (start, len, p, step) => run(data, start, len, by, zero, p, step, vlo, vhi, out, flush));
}

function quantizeIntRun(
  data: Float32Array,
  start: number,
  len: number,
  inv: Float32Array,
  zero: Int8Array,
  p: number,
  step: number,
  vlo: number,
  vhi: number,
  out: QuantArray,
  flush: boolean,
): void {
  const M = ROUND_MAGIC;
  const end = start + len;
  if (flush) {
    for (let i = start, g = p; i < end; i++, g += step) {
      const v = data[i]!;
      const x = v < MIN_NORMAL && v > -MIN_NORMAL ? 0 : v;
      out[i] = Math.min(Math.max(Math.fround(Math.fround(x * inv[g]!) + M - M + zero[g]!), vlo), vhi);
    }
  } else {
    for (let i = start, g = p; i < end; i++, g += step) {
      out[i] = Math.min(Math.max(Math.fround(Math.fround(data[i]! * inv[g]!) + M - M + zero[g]!), vlo), vhi);
    }
  }
}

/** quantizeIntRun with x / by[g] (exact division: every backend but jax). */
function quantizeIntRunDividing(
  data: Float32Array,
  start: number,
  len: number,
  inv: Float32Array,
  zero: Int8Array,
  p: number,
  step: number,
  vlo: number,
  vhi: number,
  out: QuantArray,
  flush: boolean,
): void {
  const M = ROUND_MAGIC;
  const end = start + len;
  if (flush) {
    for (let i = start, g = p; i < end; i++, g += step) {
      const v = data[i]!;
      const x = v < MIN_NORMAL && v > -MIN_NORMAL ? 0 : v;
      out[i] = Math.min(Math.max(Math.fround(Math.fround(x / inv[g]!) + M - M + zero[g]!), vlo), vhi);
    }
  } else {
    for (let i = start, g = p; i < end; i++, g += step) {
      out[i] = Math.min(Math.max(Math.fround(Math.fround(data[i]! / inv[g]!) + M - M + zero[g]!), vlo), vhi);
    }
  }
}
