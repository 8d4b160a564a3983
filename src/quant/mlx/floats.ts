/**
 * MLX's float types on an x86-64 CPU (mlx[cpu] 0.32.4), as its kernels store them: float32, and
 * float16 / bfloat16 as MLX's own structs (mlx/types/fp16.h, bf16.h), whose arithmetic widens both
 * operands to float32, computes once and rounds the result back. A value here is a JS number
 * holding a float32 that the dtype can hold; `roundTo` is the store.
 *
 * NaN: MLX's kernels never read a NaN's payload back, but they store one: x86 makes the "default
 * NaN" (sign set, 0xffc00000) for an invalid operation, float16 stores any NaN as sign | 0x7d00
 * and bfloat16 as 0x7fc0 (no sign). JS numbers carry no NaN sign, so a NaN is stored here as
 * the default NaN would be (docs/mlx-reference.md).
 */
import { bf16BitsToF32, f16BitsToF32 } from "../convert.js";
import { freshArrays, type Arrays } from "../arrays.js";

/** The float dtypes MLX quantizes and dequantizes. */
export type MlxFloat = "float32" | "float16" | "bfloat16";

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The float32 bits of a number (rounded to float32 first). */
export function f32Bits(x: number): number {
  F32[0] = x;
  return U32[0]!;
}

/** The float32 whose bits are `b`. */
export function f32FromBits(b: number): number {
  U32[0] = b >>> 0;
  return F32[0]!;
}

/** float16 bits → float32 value (exact). */
export function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** bfloat16 bits → float32 value (exact). */
export function bf16Value(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/**
 * float32 value → float16 bits as MLX's _MLX_Float16 stores it (FP16's fp16_ieee_from_fp32_value:
 * round to nearest even, overflow to ±inf, subnormals kept); a NaN is sign | 0x7d00, where JS's
 * NaN stands for x86's default NaN (sign set).
 */
export function f16Bits(x: number): number {
  if (Number.isNaN(x)) return 0xfd00;
  const b = f32Bits(x);
  const sign = (b >>> 16) & 0x8000;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) {
    // Subnormal: a multiple of 2^-24, rounded to nearest even by adding 2^-14·2^... in double.
    const q = a * 2 ** 24;
    const r = Math.round(q);
    const even = r - q === 0.5 && r % 2 !== 0 ? r - 1 : r;
    return sign | even;
  }
  const ab = b & 0x7fffffff;
  const r = ab + 0x0fff + ((ab >>> 13) & 1);
  return sign | ((r >>> 13) - (112 << 10));
}

/** float32 value → bfloat16 bits as MLX's _MLX_BFloat16 stores it (round to nearest even; NaN is 0x7fc0). */
export function bf16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  const b = f32Bits(x);
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** x (any number) stored as `dtype`, read back as a number: float32 rounding, then the 16-bit store. */
export function roundTo(x: number, dtype: MlxFloat): number {
  return ROUNDERS[dtype](x);
}

/** bfloat16's store and read-back in one step (round to nearest even on the float32 bits). */
function roundBf16(x: number): number {
  F32[0] = x;
  const b = U32[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return NaN;
  U32[0] = (b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000;
  return F32[0]!;
}

function roundF16(x: number): number {
  const f = Math.fround(x);
  return Number.isNaN(f) ? f : f16Value(f16Bits(f));
}

const ROUNDERS: Readonly<Record<MlxFloat, (x: number) => number>> = { float32: Math.fround, float16: roundF16, bfloat16: roundBf16 };

/** The store-and-read-back of `dtype` as one function (roundTo without the dispatch, for loops). */
export function rounderOf(dtype: MlxFloat): (x: number) => number {
  return ROUNDERS[dtype];
}

/** The values of a float32 tensor's data or a float16 / bfloat16 tensor's bit patterns, as float32 numbers (16-bit ones into `arrays`' "values"). */
export function valuesOf(data: Float32Array | Uint16Array, dtype: MlxFloat, arrays: Arrays = freshArrays): Float32Array {
  if (dtype === "float32") return data as Float32Array;
  const out = arrays("values", Float32Array, data.length);
  // convert.ts's widening (SIMD where there is): the same values; a NaN's payload differs, which nothing reads (see above)
  (dtype === "float16" ? f16BitsToF32 : bf16BitsToF32)(data as Uint16Array, out);
  return out;
}

/**
 * Stores float32 values as `dtype`: a Float32Array for float32 (a NaN as x86's default NaN,
 * 0xffc00000), else a Uint16Array of bit patterns; made by `arrays` for `role`.
 */
export function storeAs(values: ArrayLike<number>, dtype: MlxFloat, arrays: Arrays = freshArrays, role = "stored"): Float32Array | Uint16Array {
  if (dtype === "float32") {
    const out = arrays(role, Float32Array, values.length);
    const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (Number.isNaN(v)) bits[i] = 0xffc00000;
      else out[i] = v;
    }
    return out;
  }
  const out = arrays(role, Uint16Array, values.length);
  if (dtype === "bfloat16" && values instanceof Float32Array) {
    // bf16Bits on the float32 bits as they lie (the scales of every block, the casts of float32
    // weights): no per-value round trip through a scratch float.
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i]!;
      out[i] = (b & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
    }
    return out;
  }
  const to = dtype === "float16" ? f16Bits : bf16Bits;
  for (let i = 0; i < values.length; i++) out[i] = to(values[i]!);
  return out;
}
