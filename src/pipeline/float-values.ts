/** Floating tensor bytes as float32: the one decoding every command uses. */
import type { Float32Source } from "../quant/wasm/kernels.js";
import type { StDType } from "../formats/types.js";
import { bf16BitsToF32, f16BitsToF32, f64ToF32 } from "../quant/convert.js";
import { decodeFloat8 } from "../quant/float8.js";

/** Dtypes `floatValues` can read. */
export const FLOAT_DTYPES: ReadonlySet<StDType> = new Set<StDType>(["F32", "F16", "BF16", "F64", "F8_E4M3", "F8_E5M2"]);

/**
 * Little-endian tensor bytes as float32 values, or null for other dtypes: F16/BF16 exactly, F64
 * rounded to nearest even, float8 decoded to the values of its codes. Shared by quantize (the
 * source tensor), verify (the original) and inspect --stats. Converted values go into `scratch`
 * when it is long enough (a worker reuses one for every slice instead of making garbage).
 */
export function floatValues(dtype: StDType, bytes: Uint8Array, scratch?: Float32Array): Float32Array | null {
  const width = dtype === "F64" ? 8 : dtype === "F32" ? 4 : dtype === "F16" || dtype === "BF16" ? 2 : 1;
  const aligned = bytes.byteOffset % width === 0 ? bytes : bytes.slice();
  const count = aligned.byteLength / width;
  // float32 is returned in place: no caller writes to it, and a copy would double the memory.
  if (dtype === "F32") return new Float32Array(aligned.buffer, aligned.byteOffset, count);
  const out = scratch !== undefined && scratch.length >= count ? scratch.subarray(0, count) : new Float32Array(count);
  switch (dtype) {
    case "F64":
      f64ToF32(new Float64Array(aligned.buffer, aligned.byteOffset, count), out);
      return out;
    case "F16":
      f16BitsToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, count), out);
      return out;
    case "BF16":
      bf16BitsToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, count), out);
      return out;
    case "F8_E4M3":
      decodeFloat8(aligned, out, "float8_e4m3fn");
      return out;
    case "F8_E5M2":
      decodeFloat8(aligned, out, "float8_e5m2");
      return out;
    default:
      return null;
  }
}

/**
 * What the SIMD kernels read without a float32 copy: a float32 tensor's values in place, or a
 * float16 / bfloat16 tensor's bit patterns (widened in the kernels block by block); null for
 * other dtypes.
 */
export function float32Source(dtype: StDType, bytes: Uint8Array): Float32Source | null {
  if (dtype === "F32") return floatValues(dtype, bytes);
  if (dtype !== "BF16" && dtype !== "F16") return null;
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return { bits: new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2), kind: dtype === "BF16" ? "bfloat16" : "float16" };
}
