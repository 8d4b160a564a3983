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
import { f32Add, f32Div, f32Mul, f32Sub, flushSubnormal } from "./f32.js";
import { fromFloat32, toFloat32 } from "./convert.js";
import { broadcastLayout, broadcastShapes, expandTo, type ParamLayout } from "./broadcast.js";
import { roundHalfEven } from "./round.js";
import { sizeOf, type Tensor } from "./tensor.js";

export interface FakeQuantOptions {
  numBits?: number;
  narrowRange?: boolean;
  axis?: number | null;
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
function mulParam(a: number, param: number): number {
  return param !== param ? param : f32Mul(a, param);
}

/** Element-wise product of two same-shape arrays: x86 returns the first NaN operand. */
function mulFirst(a: number, b: number): number {
  return a !== a ? a : b !== b ? b : f32Mul(a, b);
}

function adjustAndNudge(
  min: Float32Array,
  max: Float32Array,
  numBits: number,
  narrowRange: boolean,
): NudgedRange {
  const quantMax = 2 ** numBits - 1;
  const quantMin = narrowRange ? 1 : 0;
  const levels = quantMax - quantMin;
  const n = min.length;
  // A non-scalar range divided by the python int is multiplied by its reciprocal instead (XLA).
  const invLevels = n > 1 ? f32Div(1, levels) : 0;
  const out: NudgedRange = {
    nudgedMin: new Float32Array(n),
    nudgedMax: new Float32Array(n),
    scale: new Float32Array(n),
    invScale: new Float32Array(n),
    quantZero: new Float32Array(n),
  };
  for (let i = 0; i < n; i++) {
    const lo = flushSubnormal(min[i]!);
    const diff = f32Sub(flushSubnormal(max[i]!), lo);
    const scale = n > 1 ? f32Mul(diff, invLevels) : f32Div(diff, levels);
    const invScale = f32Div(levels, diff);
    const zpFromMin = f32Sub(quantMin, f32Div(lo, scale));
    const clipped = clip(zpFromMin, quantMin, quantMax);
    const zp = clipped !== clipped ? clipped : roundHalfEven(clipped);
    const nudgedMin = mulFirst(f32Sub(quantMin, zp), scale);
    const nudgedMax = mulFirst(f32Sub(quantMax, zp), scale);
    out.scale[i] = scale;
    out.invScale[i] = invScale;
    out.nudgedMin[i] = nudgedMin;
    out.nudgedMax[i] = nudgedMax;
    out.quantZero[i] = Math.floor(f32Add(mulFirst(-nudgedMin, invScale), 0.5));
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
  const r = adjustAndNudge(loFull, hiFull, numBits, narrowRange);

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
    const clamped = clip(flushSubnormal(src[i]!), lower, nMax[channel]!);
    const shifted = f32Sub(clamped, lower);
    const level = Math.floor(f32Add(f32Sub(mulParam(shifted, inv[channel]!), qz[channel]!), 0.5));
    result[i] = mulParam(level, scale[channel]!);
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
