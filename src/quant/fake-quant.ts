/**
 * keras.quantizers.fake_quant_with_min_max_vars, forward values of the jax backend's
 * custom_gradient path, bit-exact with Keras 3.15.1 on XLA:CPU (fixtures/keras/gen_fake_quant.py).
 *
 *   adjust_and_nudge (float32):  scale = (max - min) / (qmax - qmin);  inv = (qmax - qmin) / (max - min)
 *     zp = round_half_even(clip(qmin - min / scale, qmin, qmax))
 *     nudged_min = (qmin - zp) · scale;  nudged_max = (qmax - zp) · scale
 *   qz = floor(-nudged_min · inv + 0.5)
 *   y  = floor((clip(x, nudged_min, nudged_max) - nudged_min) · inv - qz + 0.5) · scale, cast to x's dtype
 *
 * As jax runs it: every op is one float32 op with XLA:CPU's flush-to-zero / denormals-are-zero;
 * when min/max are not scalars, `(max - min) / (qmax - qmin)` divides by a broadcast python int,
 * which XLA rewrites as a multiplication by its float32 reciprocal. `axis` is only validated:
 * the forward pass broadcasts min/max against the inputs with numpy rules (so a per-channel
 * min/max of shape (C,) acts on the last axis; use (C, 1) for axis 0, as in Keras).
 */
import { KquantError } from "../errors.js";
import { f32Arith, type F32Arith } from "./f32.js";
import { behaviourOf, type KerasBackend } from "./backend.js";
import { fromFloat32, toFloat32 } from "./convert.js";
import { broadcastLayout, broadcastShapes, expandTo, type ParamLayout } from "./broadcast.js";
import { roundHalfEven } from "./round.js";
import { sizeOf, type Tensor } from "./tensor.js";

export interface FakeQuantOptions {
  numBits?: number;
  narrowRange?: boolean;
  axis?: number | null;
  /** The Keras backend whose arithmetic to reproduce (default tensorflow, Keras's default). */
  backend?: KerasBackend;
}

/** Per-channel quantities of adjust_and_nudge plus the quant_zero the forward pass derives. */
interface NudgedRange {
  nudgedMin: Float32Array;
  nudgedMax: Float32Array;
  scale: Float32Array;
  invScale: Float32Array;
  quantZero: Float32Array;
}

function asFloat32(v: Tensor | number, what: string): Tensor<Float32Array> {
  if (typeof v === "number") return { dtype: "float32", shape: [], data: new Float32Array([v]) };
  if (v.dtype === "float32") return v as Tensor<Float32Array>;
  if (v.dtype === "float16" || v.dtype === "bfloat16" || v.dtype === "float64") return toFloat32(v);
  if (v.dtype === "int32" || v.dtype === "int16" || v.dtype === "int8" || v.dtype === "uint8" || v.dtype === "uint16") {
    return { dtype: "float32", shape: [...v.shape], data: Float32Array.from(v.data as ArrayLike<number>) };
  }
  throw new KquantError(`fake_quant_with_min_max_vars: ${what} has dtype ${v.dtype}, expected a float or small int tensor`);
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

function signBit(v: number): number {
  scratch[0] = v;
  return scratchBits[0]! >>> 31;
}

/** The NaN `nan` with its sign bit set to `sign` (payload kept). */
function nanWithSign(nan: number, sign: number): number {
  scratch[0] = nan;
  scratchBits[0] = sign ? scratchBits[0]! | 0x80000000 : scratchBits[0]! & 0x7fffffff;
  return scratch[0];
}

/**
 * jnp.maximum / jnp.minimum as XLA:CPU computes them (measured): a NaN first operand wins as is; a
 * NaN second operand wins with the sign bits combined — AND for maximum, OR for minimum — the
 * same rule that orders -0 below +0.
 */
function maximum(a: number, b: number): number {
  if (a !== a) return a;
  if (b !== b) return nanWithSign(b, signBit(a) & signBit(b));
  if (a === b) return a === 0 ? (signBit(a) & signBit(b) ? -0 : 0) : a;
  return a > b ? a : b;
}

function minimum(a: number, b: number): number {
  if (a !== a) return a;
  if (b !== b) return nanWithSign(b, signBit(a) | signBit(b));
  if (a === b) return a === 0 ? (signBit(a) | signBit(b) ? -0 : 0) : a;
  return a < b ? a : b;
}

/** jnp.clip(v, lo, hi) = minimum(hi, maximum(lo, v)). */
function clip(v: number, lo: number, hi: number): number {
  return minimum(hi, maximum(lo, v));
}

/** A NaN operand of a commutative op decides the result, not the engine's operand order:
 * XLA lets the broadcast parameter's NaN win (measured on quantize_and_dequantize). */
function mulParam(a: number, param: number, f: F32Arith): number {
  return param !== param ? param : f.mul(a, param);
}

/** Element-wise product of two same-shape arrays: x86 returns the first NaN operand. */
function mulFirst(a: number, b: number, f: F32Arith): number {
  return a !== a ? a : b !== b ? b : f.mul(a, b);
}

function adjustAndNudge(
  min: Float32Array,
  max: Float32Array,
  numBits: number,
  narrowRange: boolean,
  f: F32Arith,
  reciprocal: boolean,
): NudgedRange {
  const quantMax = 2 ** numBits - 1;
  const quantMin = narrowRange ? 1 : 0;
  const levels = quantMax - quantMin;
  const n = min.length;
  // A non-scalar range divided by the python int is multiplied by its reciprocal instead (XLA).
  const invLevels = reciprocal && n > 1 ? f.div(1, levels) : 0;
  const out: NudgedRange = {
    nudgedMin: new Float32Array(n),
    nudgedMax: new Float32Array(n),
    scale: new Float32Array(n),
    invScale: new Float32Array(n),
    quantZero: new Float32Array(n),
  };
  for (let i = 0; i < n; i++) {
    const lo = f.flush(min[i]!);
    const diff = f.sub(f.flush(max[i]!), lo);
    const scale = reciprocal && n > 1 ? f.mul(diff, invLevels) : f.div(diff, levels);
    const invScale = f.div(levels, diff);
    const zpFromMin = f.sub(quantMin, f.div(lo, scale));
    const clipped = clip(zpFromMin, quantMin, quantMax);
    const zp = clipped !== clipped ? clipped : roundHalfEven(clipped);
    const nudgedMin = mulFirst(f.sub(quantMin, zp), scale, f);
    const nudgedMax = mulFirst(f.sub(quantMax, zp), scale, f);
    out.scale[i] = scale;
    out.invScale[i] = invScale;
    out.nudgedMin[i] = nudgedMin;
    out.nudgedMax[i] = nudgedMax;
    out.quantZero[i] = Math.floor(f.add(mulFirst(-nudgedMin, invScale, f), 0.5));
  }
  return out;
}

/** Keras's canonicalize_axis: the axis must name one of the inputs' dimensions. */
function checkAxis(axis: number, rank: number): void {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new KquantError(`fake_quant_with_min_max_vars: axis ${axis} is out of bounds for an input of rank ${rank}`);
  }
}

/**
 * Fake-quantizes `inputs` (float32 / float16 / bfloat16; float64 is taken as float32, as jax
 * without x64 does) to `numBits` (2..16) levels in [min, max], nudged so that 0 is exact.
 * Returns a tensor of the inputs' dtype and shape (float16 / bfloat16 as raw bits).
 */
export function fakeQuantWithMinMaxVars(
  inputs: Tensor,
  minVals: Tensor | number,
  maxVals: Tensor | number,
  opts: FakeQuantOptions = {},
): Tensor {
  const numBits = opts.numBits ?? 8;
  const narrowRange = opts.narrowRange ?? false;
  if (!Number.isInteger(numBits) || numBits < 2 || numBits > 16) {
    throw new KquantError(`fake_quant_with_min_max_vars: num_bits ${numBits} is not an integer in 2..16`);
  }
  const outDtype = inputs.dtype === "float64" ? "float32" : inputs.dtype;
  if (outDtype !== "float32" && outDtype !== "float16" && outDtype !== "bfloat16") {
    throw new KquantError(`fake_quant_with_min_max_vars: inputs have dtype ${inputs.dtype}, expected a float dtype`);
  }
  if (opts.axis !== undefined && opts.axis !== null) checkAxis(opts.axis, inputs.shape.length);

  const x = asFloat32(inputs, "inputs");
  const lo = asFloat32(minVals, "min_vals");
  const hi = asFloat32(maxVals, "max_vals");
  const paramShape = broadcastShapes(lo.shape, hi.shape, "fake_quant_with_min_max_vars min_vals/max_vals");
  const loFull = broadcastLayoutValues(lo, paramShape);
  const hiFull = broadcastLayoutValues(hi, paramShape);
  const b = behaviourOf(opts.backend, "fake_quant_with_min_max_vars");
  const f = f32Arith(b.flushSubnormals);
  if (b.fakeQuantKernel === "tensorflow") {
    const out = fakeQuantTensorflow(x, lo, hi, numBits, narrowRange, opts.axis ?? null, f);
    return outDtype === "float32" ? out : fromFloat32(out, outDtype);
  }
  const r = adjustAndNudge(loFull, hiFull, numBits, narrowRange, f, b.divide === "reciprocal");

  const what = "fake_quant_with_min_max_vars min_vals/max_vals";
  const layout = (v: Float32Array): ParamLayout => broadcastLayout(v, paramShape, x.shape, what);
  const nMin = layout(r.nudgedMin);
  const nMax = layout(r.nudgedMax).values;
  const scale = layout(r.scale).values;
  const inv = layout(r.invScale).values;
  const qz = layout(r.quantZero).values;
  const { period, inner } = nMin;
  const nmin = nMin.values;

  const src = x.data;
  const n = src.length;
  const result = new Float32Array(n);
  let channel = 0;
  let k = 0;
  for (let i = 0; i < n; i++) {
    const lower = nmin[channel]!;
    const clamped = clip(f.flush(src[i]!), lower, nMax[channel]!);
    const shifted = f.sub(clamped, lower);
    const level = Math.floor(f.add(f.sub(mulParam(shifted, inv[channel]!, f), qz[channel]!), 0.5));
    result[i] = mulParam(level, scale[channel]!, f);
    if (++k === inner) {
      k = 0;
      if (++channel === period) channel = 0;
    }
  }
  const out: Tensor<Float32Array> = { dtype: "float32", shape: [...inputs.shape], data: result };
  return outDtype === "float32" ? out : fromFloat32(out, outDtype);
}

/** A min/max tensor spread to the broadcast shape of min and max (adjust_and_nudge's shape). */
function broadcastLayoutValues(t: Tensor<Float32Array>, shape: number[]): Float32Array {
  return t.data.length === sizeOf(shape) ? t.data : expandTo(t.data, t.shape, shape);
}

/** std::round: halves away from zero. */
function roundHalfAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/**
 * TensorFlow's Nudge (fake_quant_ops_functor.h), scalar float32 code under TF's flush-to-zero:
 * the zero point clamps by comparison and rounds half away from zero (std::round).
 */
function nudgeTensorflow(min: number, max: number, quantMin: number, quantMax: number, f: F32Arith) {
  const levels = quantMax - quantMin;
  const diff = f.sub(f.flush(max), f.flush(min));
  const scale = f.div(diff, levels);
  const invScale = f.div(levels, diff);
  const zpFromMin = f.sub(quantMin, f.div(f.flush(min), scale));
  const zp = zpFromMin < quantMin ? quantMin : zpFromMin > quantMax ? quantMax : zpFromMin === zpFromMin ? roundHalfAway(zpFromMin) & 0xffff : 0;
  const nudgedMin = f.mul(f.sub(quantMin, zp), scale);
  const nudgedMax = f.mul(f.sub(quantMax, zp), scale);
  return { scale, invScale, nudgedMin, nudgedMax, quantZero: Math.floor(f.add(f.mul(-nudgedMin, invScale), 0.5)) };
}

/**
 * Keras on tensorflow calls tf.quantization.fake_quant_with_min_max_vars (axis None: min/max
 * reshaped to scalars; the functor divides by the nudged scale) or its _per_channel form (axis
 * swapped last; min/max of rank 1; the functor multiplies by the inverse scale). A range of
 * exactly [0, 0] gives zeros.
 */
function fakeQuantTensorflow(
  x: Tensor<Float32Array>,
  lo: Tensor<Float32Array>,
  hi: Tensor<Float32Array>,
  numBits: number,
  narrowRange: boolean,
  axis: number | null,
  f: F32Arith,
): Tensor<Float32Array> {
  const quantMin = narrowRange ? 1 : 0;
  const quantMax = 2 ** numBits - 1;
  const what = "fake_quant_with_min_max_vars (tensorflow)";
  const rank = x.shape.length;
  const ax = axis === null ? null : axis < 0 ? axis + rank : axis;
  const channels = ax === null ? 1 : x.shape[ax]!;
  if (ax === null ? lo.data.length !== 1 || hi.data.length !== 1 : lo.shape.length !== 1 || hi.shape.length !== 1 || lo.data.length !== channels || hi.data.length !== channels) {
    throw new KquantError(`${what}: min/max must be ${ax === null ? "one value each" : `of shape (${channels},)`}, got ${JSON.stringify(lo.shape)} / ${JSON.stringify(hi.shape)}`);
  }
  const inner = ax === null ? 1 : sizeOf(x.shape.slice(ax + 1));
  const src = x.data;
  const out = new Float32Array(src.length);
  for (let c = 0; c < channels; c++) {
    const mn = lo.data[c]!;
    const mx = hi.data[c]!;
    if (f.flush(mn) === 0 && f.flush(mx) === 0) continue; // zeros (the compare sees subnormals as 0: DAZ)
    const r = nudgeTensorflow(mn, mx, quantMin, quantMax, f);
    for (let i = 0; i < src.length; i++) {
      if (ax !== null && Math.floor(i / inner) % channels !== c) continue;
      const v = f.flush(src[i]!);
      const clamped = Math.max(Math.min(v, r.nudgedMax), r.nudgedMin);
      const shifted = f.sub(clamped, r.nudgedMin);
      const q = ax === null ? f.div(shifted, r.scale) : f.mul(shifted, r.invScale);
      out[i] = f.mul(Math.floor(f.add(f.sub(q, r.quantZero), 0.5)), r.scale);
    }
  }
  return { dtype: "float32", shape: [...x.shape], data: out };
}
