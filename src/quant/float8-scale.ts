/**
 * `keras.quantizers` float8 helpers — compute_float8_scale, compute_float8_amax_history,
 * quantize_and_dequantize — bit-exact with Keras 3.15.1 on jax CPU, plus `quantizeFloat8`,
 * the quantize half that the CLI uses to store float8 weights. `backend` picks another Keras
 * backend's arithmetic (backend.ts): torch and numpy keep subnormals (a subnormal scale then
 * divides instead of saturating every code) and every backend but jax divides exactly.
 * TensorFlow's ops.reciprocal on 8 or more floats is Eigen's rcpps + Newton step, whose last
 * bit depends on the CPU; kquant computes its exact scalar path (the result for fewer than 8).
 *
 * What jax really computes (fixtures/keras/gen_float8.py pins each point):
 * - every op is one float32 op, and XLA:CPU runs with flush-to-zero / denormals-are-zero:
 *   subnormal operands count as ±0 and subnormal results become ±0 (comparisons too, so a
 *   subnormal amax is "not > 0"). Pure data movement (roll, scatter, where, casts) keeps them.
 * - 16-bit compute dtypes are computed in float32 and rounded once to the 16-bit type, which is
 *   exact for + - * / (float32 has more than 2p+2 significand bits).
 * - python scalars (dtype_max, 2**margin) are weakly typed and become float32.
 * - NaN results carry the payload the x86 instructions give: the first NaN operand's, or the
 *   default NaN 0xFFC00000 for invalid ops (0/0, inf·0). JS arithmetic runs on the same SSE
 *   instructions, so kquant gives the same bits; when both operands of a multiply are NaN the
 *   engine may order them differently (documented gap).
 */
import { KquantError } from "../errors.js";
import { broadcastLayout, broadcastShapes, expandTo } from "./broadcast.js";
import { MIN_NORMAL, f32Arith } from "./f32.js";
import { behaviourOf, type KerasBackend } from "./backend.js";
import { roundF32ThroughBits, toFloat32, f32ToBf16Bits, f32ToF16Bits } from "./convert.js";
import { FLOAT8_MAX, decodeFloat8, encodeFloat8, float8Format, type Float8Kind } from "./float8.js";
import { sizeOf, type Tensor } from "./tensor.js";
import { simdQuantizeFloat8 } from "./wasm/kernels.js";

export type ComputeDType = "float32" | "float16" | "bfloat16";

/** Values processed per block: quotients are staged in float32 so the encoder reads exact bits. */
const BLOCK = 4096;

function f32Tensor(x: Tensor | number, what: string): Tensor<Float32Array> {
  if (typeof x === "number") return { dtype: "float32", shape: [], data: new Float32Array([x]) };
  if (x.dtype === "float32") return x as Tensor<Float32Array>;
  if (x.dtype === "float16" || x.dtype === "bfloat16" || x.dtype === "float64") return toFloat32(x);
  throw new KquantError(`${what}: dtype ${x.dtype} is not a float dtype`);
}

function roundTo(block: Float32Array, dtype: ComputeDType): void {
  if (dtype !== "float32") roundF32ThroughBits(block, dtype);
}

/**
 * The quantize half of quantize_and_dequantize on float32 data: code = cast(clip(x / scale, ±max), kind),
 * as XLA:CPU computes it. `scale` is one number or per-channel values laid out by `inner`
 * (default 1: a Float32Array of length C repeats every C elements, i.e. a (C,) scale on a (..., C)
 * input; inner = K puts a (C, 1) scale on a (C, K) input).
 *
 * XLA rewrites a division by a broadcast divisor as a multiplication by its reciprocal (rounded
 * once), so whenever the scale has fewer elements than the input, q = x · (1 / scale); only an
 * element-wise scale divides (`reciprocal` overrides the guess when `scale` was materialised).
 * `quotientDType` is the dtype the division runs in: float16 rounds the
 * reciprocal and the product to float16; bfloat16 divides exactly (XLA:CPU computes it in float32
 * before its rewrite) and rounds to bfloat16.
 */
export function quantizeFloat8(
  inputs: Float32Array,
  scale: number | Float32Array,
  kind: Float8Kind,
  out: Uint8Array,
  options: { inner?: number; quotientDType?: ComputeDType; reciprocal?: boolean; backend?: KerasBackend } = {},
): void {
  const b = behaviourOf(options.backend, "quantizeFloat8");
  const f32 = f32Arith(b.flushSubnormals);
  const tiny = b.flushSubnormals ? MIN_NORMAL : 0;
  if (out.length !== inputs.length) {
    throw new KquantError(`quantizeFloat8: ${inputs.length} inputs but ${out.length} output codes`);
  }
  const f = float8Format(kind);
  const scales = typeof scale === "number" ? new Float32Array([scale]) : scale;
  const inner = options.inner ?? 1;
  const period = scales.length;
  if (period === 0 || inputs.length % (period * inner) !== 0) {
    throw new KquantError(
      `quantizeFloat8: ${period} scale values × inner ${inner} do not tile ${inputs.length} inputs`,
    );
  }
  const quotientDType = options.quotientDType ?? "float32";
  const n = inputs.length;
  const byReciprocal = b.divide === "reciprocal" && (options.reciprocal ?? period < n) && quotientDType !== "bfloat16";
  // Per channel: the reciprocal (rounded as XLA rounds it) or the flushed divisor.
  const divisors = new Float32Array(period);
  for (let c = 0; c < period; c++) {
    const sc = f32.flush(scales[c]!);
    divisors[c] = byReciprocal ? f32.div(1, sc) : sc;
  }
  roundTo(divisors, byReciprocal ? quotientDType : "float32");

  const cast = b.float8Cast;
  if (quotientDType === "float32" && simdQuantizeFloat8(inputs, divisors, inner, byReciprocal, f, out, b.flushSubnormals, cast === "torch")) return;

  const max = FLOAT8_MAX[f];
  const block = new Float32Array(Math.min(BLOCK, n));
  // (channel, k) walk the layout incrementally: no division per element for the index.
  let channel = 0;
  let k = 0;
  let d = divisors[0]!;
  for (let start = 0; start < n; start += BLOCK) {
    const len = Math.min(BLOCK, n - start);
    const q = len === block.length ? block : block.subarray(0, len);
    // The flushes are written out (not flushSubnormal calls): this loop is the CLI's hot path.
    if (byReciprocal) {
      for (let j = 0; j < len; j++) {
        let x = inputs[start + j]!;
        if (x < tiny && x > -tiny) x *= 0;
        // XLA multiplies by the broadcast reciprocal first, so a NaN scale's NaN wins over a NaN input;
        // JS engines may commute the product, hence the explicit choice.
        let p = d !== d ? d : Math.fround(x * d);
        if (p < tiny && p > -tiny) p *= 0;
        q[j] = p;
        if (++k === inner) {
          k = 0;
          if (++channel === period) channel = 0;
          d = divisors[channel]!;
        }
      }
    } else {
      for (let j = 0; j < len; j++) {
        let x = inputs[start + j]!;
        if (x < tiny && x > -tiny) x *= 0;
        let p = Math.fround(x / d);
        if (p < tiny && p > -tiny) p *= 0;
        q[j] = p;
        if (++k === inner) {
          k = 0;
          if (++channel === period) channel = 0;
          d = divisors[channel]!;
        }
      }
    }
    roundTo(q, quotientDType);
    for (let j = 0; j < len; j++) {
      const v = q[j]!;
      // jnp.clip is maximum then minimum: NaN passes through, -0 stays -0.
      if (v < -max) q[j] = -max;
      else if (v > max) q[j] = max;
    }
    const codes = out.subarray(start, start + len);
    encodeFloat8(q, codes, f, cast);
    if (f === "float8_e5m2" && quotientDType !== "float32" && b.e5m2NaNUnsignedFrom16) {
      // jax's float16/bfloat16 → e5m2 convert drops the sign of NaN: every NaN is 0x7f.
      for (let j = 0; j < len; j++) if ((codes[j]! & 0x7f) > 0x7c) codes[j] = 0x7f;
    }
  }
}

function promote(a: string, b: ComputeDType): ComputeDType {
  // jax without x64: float64 arrives as float32; any two different float dtypes of these promote to float32.
  const aa = a === "float64" ? "float32" : a;
  return aa === b ? b : "float32";
}

/**
 * keras.quantizers.quantize_and_dequantize(inputs, scale, quantized_dtype, compute_dtype).
 * `scale` must broadcast onto `inputs` without growing it. Numbers are taken as float32 scalars.
 * The result has `computeDtype` (16-bit dtypes as raw bits) and the inputs' shape.
 */
export function quantizeAndDequantize(
  inputs: Tensor,
  scale: Tensor | number,
  quantizedDtype: Float8Kind,
  computeDtype: ComputeDType,
  backend?: KerasBackend,
): Tensor<Float32Array | Uint16Array> {
  const kind = float8Format(quantizedDtype);
  const b = behaviourOf(backend, "quantize_and_dequantize");
  const f32 = f32Arith(b.flushSubnormals);
  if (computeDtype !== "float32" && computeDtype !== "float16" && computeDtype !== "bfloat16") {
    throw new KquantError(`quantize_and_dequantize: compute dtype ${String(computeDtype)} is not float32/float16/bfloat16`);
  }
  const x = f32Tensor(inputs, "quantize_and_dequantize inputs");
  const s = f32Tensor(scale, "quantize_and_dequantize scale");
  const sCast = s.data.slice();
  roundTo(sCast, computeDtype); // ops.cast(scale, compute_dtype)
  const layout = broadcastLayout(sCast, s.shape, x.shape, "quantize_and_dequantize scale");
  const n = x.data.length;
  const codes = new Uint8Array(n);
  quantizeFloat8(x.data, layout.values, kind, codes, {
    inner: layout.inner,
    quotientDType: promote(inputs.dtype, computeDtype),
    reciprocal: s.data.length < n,
    ...(backend !== undefined ? { backend } : {}),
  });

  const result = new Float32Array(n);
  decodeFloat8(codes, result, kind, b.float8Cast);
  const { values, period, inner } = layout;
  for (let i = 0; i < n; i++) {
    const sc = f32.flush(values[Math.floor(i / inner) % period]!);
    result[i] = sc !== sc ? sc : f32.mul(result[i]!, sc);
  }
  if (computeDtype === "float32") return { dtype: "float32", shape: [...x.shape], data: result };
  const bits = new Uint16Array(n);
  if (computeDtype === "float16") f32ToF16Bits(result, bits);
  else f32ToBf16Bits(result, bits);
  return { dtype: computeDtype, shape: [...x.shape], data: bits };
}

/**
 * keras.quantizers.compute_float8_scale: 1 / where(isfinite(amax) & amax > 0, dtype_max / amax / 2**margin, 1 / scale),
 * elementwise over broadcast(amax, scale). Integer margins of 31 and more overflow Keras's int32
 * `2**margin`, so they are refused as Keras refuses them.
 */
export function computeFloat8Scale(
  amax: Tensor | number,
  scale: Tensor | number,
  dtypeMax: number,
  margin = 0,
  backend?: KerasBackend,
): Tensor<Float32Array> {
  const b = behaviourOf(backend, "compute_float8_scale");
  const f = f32Arith(b.flushSubnormals);
  if (Number.isInteger(margin) && margin >= 31) {
    throw new KquantError(`compute_float8_scale: margin ${margin} makes 2**margin overflow int32, as Keras does`);
  }
  const a = f32Tensor(amax, "compute_float8_scale amax");
  const s = f32Tensor(scale, "compute_float8_scale scale");
  const shape = broadcastShapes(a.shape, s.shape, "compute_float8_scale amax/scale");
  const av = a.data.length === sizeOf(shape) ? a.data : expandTo(a.data, a.shape, shape);
  const sv = s.data.length === sizeOf(shape) ? s.data : expandTo(s.data, s.shape, shape);
  const top = f.flush(Math.fround(dtypeMax));
  const div = f.flush(Math.fround(2 ** margin));
  const out = new Float32Array(sizeOf(shape));
  // Dividing a non-scalar by the broadcast 2**margin is a multiplication by its reciprocal in XLA.
  const byReciprocal = b.divide === "reciprocal" && out.length > 1;
  const invDiv = f.div(1, div);
  for (let i = 0; i < out.length; i++) {
    const raw = av[i]!;
    const am = f.flush(raw);
    const fallback = f.div(1, f.flush(sv[i]!));
    const q = f.div(top, am);
    let sf = byReciprocal ? f.mul(q, invDiv) : f.div(q, div);
    if (!(am > 0)) sf = fallback;
    if (!Number.isFinite(raw)) sf = fallback;
    out[i] = f.div(1, sf);
  }
  return { dtype: "float32", shape, data: out };
}

/** max(|x|) as jnp.max(jnp.abs(x)) gives it on XLA:CPU: NaN wins; each max op flushes subnormals
 * (a one-element x needs no max op, so its subnormal survives). */
function absMaxForHistory(x: Float32Array, flush: boolean, fullReductionNaN: number | null): number {
  if (x.length === 1) return Math.abs(x[0]!);
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const v = Math.abs(x[i]!);
    if (v !== v) return fullReductionNaN === null ? v : new Float32Array(new Uint32Array([fullReductionNaN]).buffer)[0]!;
    if (v > m) m = v;
  }
  return f32Arith(flush).flush(m);
}

/**
 * keras.quantizers.compute_float8_amax_history: roll the history left by one (over all its
 * elements, as jnp.roll without an axis does), then write max(|x|) into its first row.
 */
export function computeFloat8AmaxHistory(x: Tensor, amaxHistory: Tensor, backend?: KerasBackend): Tensor<Float32Array> {
  const { flushSubnormals: flush, fullReductionNaN } = behaviourOf(backend, "compute_float8_amax_history");
  const xs = f32Tensor(x, "compute_float8_amax_history x");
  if (xs.data.length === 0) {
    throw new KquantError(`compute_float8_amax_history: x of shape ${JSON.stringify(x.shape)} is empty`);
  }
  if (amaxHistory.dtype !== "float32" || amaxHistory.shape.length === 0) {
    throw new KquantError(
      `compute_float8_amax_history: history must be a float32 tensor of rank >= 1, got ${amaxHistory.dtype} ${JSON.stringify(amaxHistory.shape)}`,
    );
  }
  const h = amaxHistory.data as Float32Array;
  const n = h.length;
  const out = new Float32Array(n);
  if (n === 0) return { dtype: "float32", shape: [...amaxHistory.shape], data: out };
  // Copy bits, not numbers, so NaN payloads already in the history survive the roll.
  const hb = new Uint32Array(h.buffer, h.byteOffset, n);
  const ob = new Uint32Array(out.buffer);
  ob.set(hb.subarray(1), 0);
  ob[n - 1] = hb[0]!;
  const row = n / amaxHistory.shape[0]!;
  out.fill(absMaxForHistory(xs.data, flush, fullReductionNaN), 0, row);
  return { dtype: "float32", shape: [...amaxHistory.shape], data: out };
}
