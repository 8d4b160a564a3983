/**
 * MX (MXFP4 / MXFP8) scales as compressed-tensors 0.19.0 computes them: round_to_power_2 and
 * generate_mx_scales (quantization/utils/mxfp_utils.py), the E8M0 round trip of calculate_qparams
 * (round_to_quantized_type_dtype to uint8, maybe_convert_from_mx_exp) and compress_mx_scale
 * (compressors/mx_utils.py).
 */
import { f16Value } from "../convert.js";
import { storedBits, type LlmcDType } from "./arith.js";

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);

/**
 * round_to_power_2 on T's bits (float32 bits, or the 16-bit pattern): add half of the part of
 * the mantissa below E2M1's one bit (bfloat16 + 1 << 5, float16 + 1 << 8, float32 + 1 << 21), then keep
 * sign and exponent. So a mantissa ≥ 1.75 goes up to the next power of two (1.75 · 2^k →
 * 2^(k+1)), the largest finite values become ∞, subnormals round among the subnormal steps, and a
 * NaN becomes ±∞ or ±0 depending on its payload (the carry can reach the sign bit).
 */
export function roundToPowerOf2Bits(bits: number, dtype: LlmcDType): number {
  if (dtype === "bfloat16") return (bits + (1 << 5)) & 0xff80;
  if (dtype === "float16") return (bits + (1 << 8)) & 0xfc00;
  return ((bits + (1 << 21)) & 0xff800000) >>> 0;
}

/**
 * round_to_power_2 of a value. A NaN absmax is taken as the all-ones pattern torch's vectorised
 * NaN-propagating max / min write (0xffffffff, 0xffff), whose carry clears every bit: it rounds to
 * +0, the smallest exponent (measured: scale 2^-127). Its scalar code writes 0x7fc00000 instead,
 * which rounds to ∞: kquant refuses NaN weights (linear.ts llmcValueRefusal).
 */
export function roundToPowerOf2(x: number, dtype: LlmcDType): number {
  return fromBits(roundToPowerOf2Bits(toBits(x, dtype), dtype), dtype);
}

function toBits(x: number, dtype: LlmcDType): number {
  if (x !== x) return dtype === "float32" ? 0xffffffff : 0xffff;
  return storedBits(x, dtype);
}

function fromBits(b: number, dtype: LlmcDType): number {
  if (dtype === "float16") return f16Value(b);
  U[0] = dtype === "bfloat16" ? (b << 16) >>> 0 : b;
  return F[0]!;
}

/** floor(log2 p) for p a power of two (or 0, ∞): its exponent, -∞ for 0, ∞ for ∞. */
function log2Floor(p: number): number {
  if (p === 0) return -Infinity;
  if (p === Infinity) return Infinity;
  return Math.floor(Math.log2(p));
}

/** floor(log2(FP4 max 6)) = 2 and floor(log2(FP8 E4M3 max 448)) = 8: generate_mx_scales' offset. */
export const MX_ELEMENT_OFFSET: Readonly<Record<4 | 8, number>> = Object.freeze({ 4: 2, 8: 8 });

/**
 * The E8M0 exponent calculate_qparams keeps for a group's absmax (NaN counts as +∞): 127 +
 * floor(log2(round_to_power_2(amax))) - offset, clamped to [0, 255] (a zero group → 0).
 */
export function mxExponent(amax: number, dtype: LlmcDType, numBits: 4 | 8): number {
  const e = mxExponentRaw(amax, dtype, numBits);
  return e < 0 ? 0 : e > 255 ? 255 : e;
}

/**
 * generate_mx_scales itself on an absmax's bits: 127 + floor(log2(round_to_power_2(amax))) -
 * offset, unclamped (-∞ for ±0, ∞ for ∞, NaN for -∞), in T (exact: small integers).
 */
export function mxExponentRawBits(bits: number, dtype: LlmcDType, numBits: 4 | 8): number {
  return 127 + log2Floor(fromBits(roundToPowerOf2Bits(bits, dtype), dtype)) - MX_ELEMENT_OFFSET[numBits];
}

function mxExponentRaw(amax: number, dtype: LlmcDType, numBits: 4 | 8): number {
  return mxExponentRawBits(toBits(amax, dtype), dtype, numBits);
}

/** The float scale of an E8M0 exponent in float32 / bfloat16: 2^(e-127) (e = 255 → ∞). */
export function mxScale(e: number): number {
  return Math.fround(2 ** (e - 127));
}

/**
 * compress_mx_scale: 127 + int32(floor(log2(scale))) as uint8. For the ∞ scale of e = 255 the
 * int32 cast of ∞ is INT32_MIN on x86, and the uint8 cast keeps the low byte of INT32_MIN + 127.
 */
export function compressMxScale(scale: number): number {
  if (scale === Infinity || scale !== scale) return (127 + -2147483648) & 0xff;
  return (127 + log2Floor(scale)) & 0xff;
}
