/**
 * `keras.quantizers.abs_max_quantize` (default path, to_numpy=False) on float32 data,
 * bit-exact with Keras 3.15.1 on each CPU backend (`backend`, default tensorflow):
 *
 *   scale = value_range[1] / (max(|x|, axis, keepdims) + epsilon)      (float32)
 *   q     = cast(clip(round_half_even(x * scale), lo, hi), dtype)
 *
 * Where the backends differ (backend.ts): tensorflow and jax flush subnormals (below), torch
 * and numpy keep them; values outside the output dtype (a value range wider than it) wrap on
 * torch and numpy (C's cast), saturate on jax, and are refused on tensorflow (its cast depends on
 * the element's position); torch returns a 0-d scale for axis=None, writes uint16 as int32, and
 * gives an all-ones NaN scale there. The rest is the same on all four.
 *
 * What jax really does, measured (fixtures/keras/gen_abs_max.py pins every point):
 * - python-float epsilon and value_range are weakly typed, so they become float32;
 *   every op is one float32 operation (Math.fround of the double op is exact for + - * /).
 * - XLA:CPU runs with flush-to-zero and denormals-are-zero: subnormal operands count as 0
 *   and subnormal results become 0 in every arithmetic op and comparison, so we flush the
 *   input once and every result after.
 * - float→int casts saturate, truncate toward zero, and map NaN to 0. Hence a NaN in a
 *   slice makes its scale NaN and every value of the slice 0; an Inf makes its slice's
 *   scale 0 and every value 0 (Inf·0 = NaN → 0).
 * - NaN bit patterns (only visible in `scale` and in float32 output): abs() clears the sign,
 *   so a NaN scale is +qNaN 0x7FC00000 and so are the float32 values of its slice; an invalid
 *   op (Inf·0, 0·Inf) gives x86's default NaN 0xFFC00000. kquant writes exactly these two
 *   patterns (NaN payloads of the input are not carried through; Keras would carry them).
 */
import { KquantError } from "../errors.js";
import { roundHalfEven } from "./round.js";
import type { Tensor } from "./tensor.js";
import { toFloat32 } from "./convert.js";
import { RunCursor, normalizeAxes, planAbsMax, type ReductionPlan } from "./axes.js";
import { absMaxAlong } from "./absmax-along.js";
import { countNonFinite } from "./finite.js";
import { simdAbsMaxQuantizeInt8Rows, simdQuantizeInt8, type Float32Source } from "./wasm/kernels.js";
import { MIN_NORMAL, f32Arith, type F32Arith } from "./f32.js";
import { behaviourOf, type BackendBehaviour, type KerasBackend } from "./backend.js";

/** Output dtypes kquant can write for integer quantization. */
export type QuantDType = "int8" | "uint8" | "int16" | "uint16" | "int32" | "uint32" | "float32";

export type QuantArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array;

const RANGES: Record<QuantDType, [number, number] | null> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  float32: null,
};

export function isQuantDType(d: string): d is QuantDType {
  return Object.prototype.hasOwnProperty.call(RANGES, d);
}

export function allocQuant(dtype: QuantDType, n: number): QuantArray {
  switch (dtype) {
    case "int8":
      return new Int8Array(n);
    case "uint8":
      return new Uint8Array(n);
    case "int16":
      return new Int16Array(n);
    case "uint16":
      return new Uint16Array(n);
    case "int32":
      return new Int32Array(n);
    case "uint32":
      return new Uint32Array(n);
    case "float32":
      return new Float32Array(n);
  }
}

/** `given` after checking it fits (the array type of `dtype`, `n` long), or a new array. */
export function outArray(given: QuantArray | undefined, dtype: QuantDType, n: number, what: string): QuantArray {
  if (given === undefined) return allocQuant(dtype, n);
  if (given.constructor !== allocQuant(dtype, 0).constructor || given.length !== n) {
    throw new KquantError(`${what}: output array is ${given.constructor.name}(${given.length}), expected ${dtype} × ${n}`);
  }
  return given;
}

/**
 * The clip bounds that make `cast(clip(r, lo, hi), dtype)` a plain typed-array store: clamping
 * commutes with min/max, so saturating the bounds to the dtype range equals saturating the
 * value; the store then truncates toward zero and maps NaN to 0, exactly as XLA's cast does.
 * With `wrap` (torch, numpy) the bounds stay as given and the store wraps out-of-range values
 * modulo 2^bits, as their C cast through int32 does.
 */
export function clipBounds(valueRange: readonly [number, number], dtype: QuantDType, flush = true, wrap = false): [number, number] {
  const f = f32Arith(flush).flush;
  let lo = f(Math.fround(valueRange[0]));
  let hi = f(Math.fround(valueRange[1]));
  const r = RANGES[dtype];
  if (r && !wrap) {
    lo = Math.min(Math.max(lo, r[0]), r[1]);
    hi = Math.min(Math.max(hi, r[0]), r[1]);
  }
  return [lo, hi];
}

/**
 * The dtype `backend` really writes for `dtype` (torch: uint16 → int32), after refusing what it
 * cannot reproduce: uint32 on torch (int64 there), and on tensorflow a value range wider than the
 * dtype (its out-of-range cast is saturating or wrapping depending on the element's position).
 */
export function backendDType(dtype: QuantDType, valueRange: readonly [number, number], b: BackendBehaviour, what: string): QuantDType {
  if (!b.wideUnsigned && dtype === "uint32") throw new KquantError(`${what}: this backend has no uint32 (Keras casts to int64 there), which kquant does not write`);
  const r = RANGES[dtype];
  // Rounded values lie within [ceil(lo), floor(hi)]: only those bounds can leave the dtype.
  if (!b.outOfRangeCast && r && (Math.ceil(valueRange[0]) < r[0] || Math.floor(valueRange[1]) > r[1])) {
    throw new KquantError(
      `${what}: value range ${JSON.stringify(valueRange)} exceeds ${dtype}; this backend's cast of out-of-range values depends on the element's position, so no bytes would match`,
    );
  }
  return !b.wideUnsigned && dtype === "uint16" ? "int32" : dtype;
}

/**
 * Refuses, on a backend whose integer cast of NaN depends on the element's position
 * (tensorflow), a quantization that sends NaN to the cast: x · scale is NaN where the scale is
 * NaN (a NaN in the slice), 0 next to an Inf, or Inf (an all-zero slice with epsilon 0) next to
 * a zero. Costs a pass only when some scale is not a positive finite number; `values` may be a
 * function that makes them, so a 16-bit source is widened to float32 only then.
 */
export function refuseNaNCast(values: Float32Array | (() => Float32Array), scale: Float32Array, plan: ReductionPlan, b: BackendBehaviour, what: string): void {
  if (b.outOfRangeCast || scale.every((s) => s > 0 && s < Infinity)) return;
  const data = typeof values === "function" ? values() : values;
  const tiny = b.flushSubnormals ? MIN_NORMAL : 0;
  const step = plan.innerReduced ? 0 : 1;
  const c = new RunCursor(plan);
  while (c.next()) {
    for (let i = 0; i < plan.innerLen; i++) {
      const x = data[c.inOffset + i]!;
      const product = (x < tiny && x > -tiny ? 0 : x) * scale[c.outOffset + i * step]!;
      if (product !== product) {
        throw new KquantError({
          what: `${what}: a NaN reaches the int cast, which on this backend depends on its position`,
          hint: "torch, jax and numpy cast NaN to 0",
        });
      }
    }
  }
}

export function checkQuantDType(dtype: string, what: string): QuantDType {
  if (!isQuantDType(dtype)) {
    throw new KquantError(`${what}: unsupported output dtype ${dtype} (expected one of ${Object.keys(RANGES).join(", ")})`);
  }
  return dtype;
}

/**
 * The input as float32 data: float32 as is (no copy); float16 / bfloat16 / float64 converted
 * first (exact for the 16-bit kinds, rounded for float64). Keras would compute in the input's
 * own dtype, so only float32 inputs are bit-exact with Keras; other floats are quantized as
 * their float32 values. Integer inputs are refused.
 */
export function float32Data(t: Tensor, what: string): Float32Array {
  if (t.dtype === "float32" && t.data instanceof Float32Array) return t.data;
  if (t.dtype === "float64" || t.dtype === "float16" || t.dtype === "bfloat16") return toFloat32(t).data;
  throw new KquantError(`${what}: expected a float tensor, got ${t.dtype}`);
}

export interface AbsMaxOptions {
  valueRange?: readonly [number, number];
  dtype?: QuantDType;
  epsilon?: number;
  /** The Keras backend whose arithmetic to reproduce (default tensorflow, Keras's default). */
  backend?: KerasBackend;
  /**
   * Also report how many inputs are NaN or ±Inf (`nonFinite`), without a separate pass: a slice
   * holds one exactly when its amax is NaN or Inf, so the values are only counted when some are.
   * A caller that counts is one that discards the values when there are some: on tensorflow they
   * are then not refused (see nanReachesCast), but neither are they TensorFlow's.
   */
  countNonFinite?: boolean;
  /**
   * Arrays to write into instead of allocating (e.g. views of a shared output buffer): `values`
   * of the output dtype's array type and the input's length, `scale` of the reduced size.
   */
  out?: { values?: QuantArray; scale?: Float32Array };
}

export interface AbsMaxResult {
  values: Tensor<QuantArray>;
  scale: Tensor<Float32Array>;
  /** NaN and ±Inf among the inputs; only with `countNonFinite` (else 0). */
  nonFinite: number;
}

export const DEFAULT_EPSILON = 1e-7;

/**
 * Scale of one reduced slice, in place: value_range[1] / (amax + epsilon), each step a float32
 * op of the backend's arithmetic; a NaN scale gets XLA's bits (see the file comment).
 */
function scaleInPlace(amax: Float32Array, bits: Uint32Array, i: number, top: number, eps: number, f: F32Arith): void {
  const s = f.div(top, f.add(f.flush(amax[i]!), eps));
  if (s !== s) bits[i] = POSITIVE_QNAN;
  else amax[i] = s;
}

/** Scale per reduced slice (see scaleInPlace). Works in place on `amax`. `flush`: the backend flushes subnormals. */
export function absMaxScale(amax: Float32Array, rangeMax: number, epsilon: number, flush = true): Float32Array {
  const f = f32Arith(flush);
  const eps = f.flush(Math.fround(epsilon));
  const top = f.flush(Math.fround(rangeMax));
  const bits = new Uint32Array(amax.buffer, amax.byteOffset, amax.length);
  for (let i = 0; i < amax.length; i++) scaleInPlace(amax, bits, i, top, eps, f);
  return amax;
}

/** NaN patterns XLA:CPU produces: propagated from |x| (sign cleared) and x86's default NaN. */
export const POSITIVE_QNAN = 0x7fc00000;
export const DEFAULT_NAN = 0xffc00000;

export function absMaxQuantize(inputs: Tensor, axis: number | readonly number[] | null, opts: AbsMaxOptions = {}): AbsMaxResult {
  // float16 / bfloat16 go to the int8 kernel as they are (it widens them block by block, the same
  // bits as the conversion); every other path takes the float32 values, converted once if needed.
  const wide16 = inputs.dtype === "bfloat16" || inputs.dtype === "float16" ? (inputs.dtype as "bfloat16" | "float16") : null;
  let converted: Float32Array | null = wide16 ? null : float32Data(inputs, "abs_max_quantize");
  const float32 = (): Float32Array => (converted ??= float32Data(inputs, "abs_max_quantize"));
  const count = inputs.data.length;
  const valueRange = opts.valueRange ?? [-127, 127];
  const epsilon = opts.epsilon ?? DEFAULT_EPSILON;
  const b = behaviourOf(opts.backend, "abs_max_quantize");
  const dtype = backendDType(checkQuantDType(opts.dtype ?? "int8", "abs_max_quantize"), valueRange, b, "abs_max_quantize");
  const flush = b.flushSubnormals;
  const f = f32Arith(flush);
  const shape = inputs.shape;
  const plan = planAbsMax(shape, normalizeAxes(axis, shape.length));
  const out = outArray(opts.out?.values, dtype, count, "abs_max_quantize values");
  const [lo, hi] = clipBounds(valueRange, dtype, flush, b.intCast === "wrap");
  const scale = outArray(opts.out?.scale, "float32", plan.outSize, "abs_max_quantize scale") as Float32Array;
  let nonFinite = 0;

  const eps = f.flush(Math.fround(epsilon));
  const top = f.flush(Math.fround(valueRange[1]));
  const bits = new Uint32Array(scale.buffer, scale.byteOffset, scale.length);
  let anyBad = false;
  const toScale = (a: Float32Array, o: number): void => {
    const m = a[o]!;
    if (m - m !== 0) anyBad = true;
    scaleInPlace(a, bits, o, top, eps, f);
  };
  // The CLI's case (int8 / int4 values, scale per row) in one SIMD pass per block.
  const source: Float32Source = wide16 ? { bits: inputs.data as Uint16Array, kind: wide16 } : float32();
  if (out instanceof Int8Array && simdAbsMaxQuantizeInt8Rows(source, plan, scale, toScale, lo, hi, out, flush)) {
    if (opts.countNonFinite && anyBad) nonFinite = countNonFinite(float32());
  } else {
    const data = float32();
    const { amax } = absMaxAlong(data, shape, plan);
    if (opts.countNonFinite) nonFinite = amax.every((m) => m - m === 0) ? 0 : countNonFinite(data);
    scale.set(absMaxScale(amax, valueRange[1], epsilon, flush));
    if (out instanceof Float32Array) {
      quantizeExact(data, scale, plan, lo, hi, out, flush);
      fixNaNBits(out, scale, plan);
    } else if (!(out instanceof Int8Array && simdQuantizeInt8(data, plan, scale, lo, hi, out, flush))) {
      quantizeToInt(data, scale, plan, lo, hi, out, flush);
    }
  }
  if (!(out instanceof Float32Array) && !(opts.countNonFinite && nonFinite > 0)) refuseNaNCast(float32, scale, plan, b, "abs_max_quantize");
  // torch's amax over every axis drops keepdims' ones: a 0-d scale (and its NaN is all ones).
  const scaleShape = axis === null && b.scalarScaleRank0 ? [] : plan.outShape;
  if (axis === null && b.fullReductionNaN !== null && scale[0] !== scale[0]) bits[0] = b.fullReductionNaN;
  return {
    values: { dtype, shape: [...shape], data: out },
    scale: { dtype: "float32", shape: scaleShape, data: scale },
    nonFinite,
  };
}

/** 1.5·2^52: adding and subtracting it rounds a double to an integer, ties to even. */
export const ROUND_MAGIC = 6755399441055744;

/**
 * The scalar loop for integer outputs (the SIMD kernels take int8 when they can; the results are
 * the same bits). (p + M) - M is round-half-even for |p| < 2^51; beyond that p is already far
 * outside every integer clip bound, so the clamp hides the difference. Math.min/max let NaN
 * through and the typed-array store turns it into 0, as XLA's cast does; the zero's sign is
 * lost, which integers cannot show.
 *
 * Speed: a clamp written as a ternary, stored straight into the typed array, made V8 truncate
 * through its slow double→int path (~11 ns/element, against ~3 with Math.min/max). The flush
 * of subnormal inputs only matters when scale · 2^-126 can exceed 0.5 (otherwise the product
 * rounds to 0 either way, and an integer shows no sign), so it is decided once per run, or once
 * per tensor when the scale varies along the run.
 */
export function quantizeToInt(data: Float32Array, scale: Float32Array, plan: ReductionPlan, lo: number, hi: number, out: QuantArray, flush = true): void {
  const n = plan.innerLen;
  const c = new RunCursor(plan);
  const M = ROUND_MAGIC;
  // Without flushing (torch, numpy) every scale takes the plain loop.
  const plain = flush ? (s: number): boolean => s * MIN_NORMAL <= 0.5 : (): boolean => true;
  if (plan.innerReduced) {
    while (c.next()) {
      const s = scale[c.outOffset]!;
      const end = c.inOffset + n;
      if (plain(s)) {
        for (let i = c.inOffset; i < end; i++) out[i] = Math.min(Math.max(Math.fround(data[i]! * s) + M - M, lo), hi);
      } else {
        for (let i = c.inOffset; i < end; i++) {
          const x = data[i]!;
          out[i] = Math.min(Math.max(Math.fround((x < MIN_NORMAL && x > -MIN_NORMAL ? 0 : x) * s) + M - M, lo), hi);
        }
      }
    }
  } else if (scale.every(plain)) {
    while (c.next()) {
      const inOff = c.inOffset;
      const outOff = c.outOffset;
      for (let i = 0; i < n; i++) out[inOff + i] = Math.min(Math.max(Math.fround(data[inOff + i]! * scale[outOff + i]!) + M - M, lo), hi);
    }
  } else {
    while (c.next()) {
      const inOff = c.inOffset;
      const outOff = c.outOffset;
      for (let i = 0; i < n; i++) {
        const x = data[inOff + i]!;
        const r = Math.fround((x < MIN_NORMAL && x > -MIN_NORMAL ? 0 : x) * scale[outOff + i]!) + M - M;
        out[inOff + i] = Math.min(Math.max(r, lo), hi);
      }
    }
  }
}

/** float32 output keeps the sign of zero and NaN, so it takes the exact rounding and clip. */
function quantizeExact(data: Float32Array, scale: Float32Array, plan: ReductionPlan, lo: number, hi: number, out: Float32Array, flush: boolean): void {
  const tiny = flush ? MIN_NORMAL : 0;
  const n = plan.innerLen;
  const step = plan.innerReduced ? 0 : 1;
  const c = new RunCursor(plan);
  while (c.next()) {
    const inOff = c.inOffset;
    const outOff = c.outOffset;
    for (let i = 0; i < n; i++) {
      const x = data[inOff + i]!;
      const p = Math.fround((x < tiny && x > -tiny ? 0 : x) * scale[outOff + i * step]!);
      out[inOff + i] = Math.min(Math.max(roundHalfEven(p), lo), hi);
    }
  }
}

/** float32 output only: give each NaN the pattern XLA:CPU gives it (see the file comment). */
function fixNaNBits(out: Float32Array, scale: Float32Array, plan: ReductionPlan): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  const n = plan.innerLen;
  const step = plan.innerReduced ? 0 : 1;
  const c = new RunCursor(plan);
  while (c.next()) {
    for (let i = 0; i < n; i++) {
      const v = out[c.inOffset + i]!;
      if (v !== v) {
        const s = scale[c.outOffset + i * step]!;
        bits[c.inOffset + i] = s !== s ? POSITIVE_QNAN : DEFAULT_NAN;
      }
    }
  }
}
