/**
 * Exact conversions between float32 and the other float dtypes kquant reads and writes,
 * bit for bit as numpy / ml_dtypes `astype` do them (round to nearest, ties to even).
 *
 * Every routine moves raw bit patterns through Uint32Array views, so NaN payloads are never
 * handed to the JS engine as numbers (whose NaN encoding is implementation-defined).
 */
import { KquantError } from "../errors.js";
import type { Tensor } from "./tensor.js";
import { simdWiden16 } from "./wasm/kernels.js";

export type Float16Kind = "float16" | "bfloat16";

function u32View(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function checkLengths(src: { length: number }, dst: { length: number }, what: string): void {
  if (src.length !== dst.length) {
    throw new KquantError(`${what}: source has ${src.length} elements but destination has ${dst.length}`);
  }
}

/** float16 bits → float32 bits, numpy's npy_halfbits_to_floatbits (signalling NaNs stay signalling). */
function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = h & 0x7c00;
  const man = h & 0x03ff;
  if (exp === 0x7c00) return (sign | 0x7f800000 | (man << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 0x1c000) << 13) | (man << 13)) >>> 0;
  if (man === 0) return sign >>> 0;
  // Subnormal: normalise the significand; the value is man * 2^-24 exactly.
  let e = 113; // float32 biased exponent of 2^-14
  let m = man;
  while ((m & 0x0400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x03ff) << 13)) >>> 0;
}

/** Built once on first use: 256 KiB, and decoding becomes a single indexed load. */
let halfLut: Uint32Array | null = null;
function halfToFloatLut(): Uint32Array {
  if (halfLut === null) {
    halfLut = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) halfLut[h] = halfBitsToFloatBits(h);
  }
  return halfLut;
}

/** Adding this to a float below 2^-14 rounds it (ties to even) to a multiple of 2^-24 in double. */
const HALF_SUBNORMAL_MAGIC = 2 ** 28;

/**
 * float32 bits → float16 bits, numpy's npy_floatbits_to_halfbits: NaN keeps sign and the top
 * payload bits (forced non-zero), overflow past 65520 becomes inf, subnormals round to nearest even.
 * `value` is the same float32 as a number (for the subnormal branch).
 */
function floatBitsToHalfBits(bits: number, value: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const a = bits & 0x7fffffff;
  if (a >= 0x7f800000) {
    if (a === 0x7f800000) return sign | 0x7c00;
    const h = 0x7c00 + ((a & 0x007fffff) >>> 13);
    return sign | (h === 0x7c00 ? 0x7c01 : h);
  }
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a >= 0x38800000) {
    const r = a + 0x0fff + ((a >>> 13) & 1);
    return sign | ((r >>> 13) - (112 << 10));
  }
  const mag = value < 0 ? -value : value;
  return sign | ((mag + HALF_SUBNORMAL_MAGIC - HALF_SUBNORMAL_MAGIC) * 16777216);
}

/** float32 bits → bfloat16 bits, ml_dtypes: every NaN becomes the quiet NaN 0x7fc0 with its sign. */
function floatBitsToBfloatBits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) & 0x8000) | 0x7fc0;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

const SCALAR = new Float32Array(1);
const SCALAR_BITS = new Uint32Array(SCALAR.buffer);

/** One value (rounded to float32 first) → float16 bits, as f32ToF16Bits converts each element. */
export function f16BitsOf(x: number): number {
  SCALAR[0] = x;
  return floatBitsToHalfBits(SCALAR_BITS[0]!, SCALAR[0]!);
}

/** The float32 value of float16 bits `h`. */
export function f16Value(h: number): number {
  SCALAR_BITS[0] = halfToFloatLut()[h]!;
  return SCALAR[0]!;
}

export function f16BitsToF32(src: Uint16Array, dst: Float32Array): void {
  checkLengths(src, dst, "float16 → float32");
  if (simdWiden16(src, u32View(dst), "float16")) return;
  const lut = halfToFloatLut();
  const out = u32View(dst);
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = lut[src[i]];
}

export function bf16BitsToF32(src: Uint16Array, dst: Float32Array): void {
  checkLengths(src, dst, "bfloat16 → float32");
  if (simdWiden16(src, u32View(dst), "bfloat16")) return;
  const out = u32View(dst);
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = src[i] << 16;
}

export function f32ToF16Bits(src: Float32Array, dst: Uint16Array): void {
  checkLengths(src, dst, "float32 → float16");
  const bits = u32View(src);
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = floatBitsToHalfBits(bits[i], src[i]);
}

export function f32ToBf16Bits(src: Float32Array, dst: Uint16Array): void {
  checkLengths(src, dst, "float32 → bfloat16");
  const bits = u32View(src);
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = floatBitsToBfloatBits(bits[i]);
}

/** float64 → float32, round to nearest even (Math.fround is exactly IEEE's double → single). */
export function f64ToF32(src: Float64Array, dst: Float32Array): void {
  checkLengths(src, dst, "float64 → float32");
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = src[i];
}

/**
 * Rounds float32 values in place to the nearest float16 / bfloat16 (kept as float32): what a
 * float32 result becomes when jax computes in the 16-bit dtype. Exact for +,-,*,/ results because
 * float32 carries more than 2p+2 significand bits for both 16-bit formats.
 */
export function roundF32ThroughBits(values: Float32Array, kind: Float16Kind): void {
  const bits = u32View(values);
  const n = values.length;
  if (kind === "bfloat16") {
    for (let i = 0; i < n; i++) bits[i] = floatBitsToBfloatBits(bits[i]) << 16;
  } else {
    const lut = halfToFloatLut();
    for (let i = 0; i < n; i++) bits[i] = lut[floatBitsToHalfBits(bits[i], values[i])];
  }
}

/** One float32 number rounded to a float16 / bfloat16 value (as a number), for scalars. */
export function roundScalarTo(x: number, dtype: Float16Kind | "float32"): number {
  const one = new Float32Array([x]);
  if (dtype !== "float32") roundF32ThroughBits(one, dtype);
  return one[0];
}

/** Any float tensor as float32 (exact for float16 / bfloat16 / float32; float64 rounds). */
export function toFloat32(t: Tensor): Tensor<Float32Array> {
  const n = t.data.length;
  switch (t.dtype) {
    case "float32":
      return { dtype: "float32", shape: [...t.shape], data: (t.data as Float32Array).slice() };
    case "float64": {
      const out = new Float32Array(n);
      f64ToF32(t.data as Float64Array, out);
      return { dtype: "float32", shape: [...t.shape], data: out };
    }
    case "float16": {
      const out = new Float32Array(n);
      f16BitsToF32(t.data as Uint16Array, out);
      return { dtype: "float32", shape: [...t.shape], data: out };
    }
    case "bfloat16": {
      const out = new Float32Array(n);
      bf16BitsToF32(t.data as Uint16Array, out);
      return { dtype: "float32", shape: [...t.shape], data: out };
    }
    default:
      throw new KquantError(`toFloat32: dtype ${t.dtype} is not a float16/bfloat16/float32/float64 tensor`);
  }
}

/** A float32 tensor in float16 / bfloat16 (raw bits) or float32 (a copy). */
export function fromFloat32(
  t: Tensor<Float32Array>,
  dtype: "float16" | "bfloat16" | "float32",
): Tensor<Float32Array | Uint16Array> {
  if (t.dtype !== "float32" || !(t.data instanceof Float32Array)) {
    throw new KquantError(`fromFloat32: expected a float32 tensor, got ${t.dtype}`);
  }
  if (dtype === "float32") return { dtype, shape: [...t.shape], data: t.data.slice() };
  const out = new Uint16Array(t.data.length);
  if (dtype === "float16") f32ToF16Bits(t.data, out);
  else f32ToBf16Bits(t.data, out);
  return { dtype, shape: [...t.shape], data: out };
}
