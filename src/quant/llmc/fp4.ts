/**
 * FP4 E2M1 as compressed-tensors 0.19.0 computes it on CPU: the eager `cast_to_fp4`
 * (quantization/utils/fp4_utils.py; the Triton kernel needs a GPU) and `pack_fp4_to_uint8`
 * (compressors/nvfp4/helpers.py). Magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6; codes sign·8 + index.
 */

/**
 * cast_to_fp4 of one value: |x| rounded to E2M1 with ties to even (0.25 → 0, 0.75 → 1, 1.25 → 1,
 * 1.75 → 2, 2.5 → 2, 3.5 → 4, 5 → 4), above 5 → 6, then times torch.sign(x): so -0 becomes +0,
 * a negative value that rounds to 0 becomes -0, and NaN stays NaN.
 */
export function castToFp4(x: number): number {
  if (x !== x) return NaN;
  const a = x < 0 ? -x : x;
  let m: number;
  if (a <= 0.25) m = 0;
  else if (a < 0.75) m = 0.5;
  else if (a <= 1.25) m = 1;
  else if (a < 1.75) m = 1.5;
  else if (a <= 2.5) m = 2;
  else if (a < 3.5) m = 3;
  else if (a <= 5) m = 4;
  else m = 6;
  const sign = x > 0 ? 1 : x < 0 ? -1 : 0;
  return m * sign;
}

/**
 * The 4-bit code pack_fp4_to_uint8 writes for an E2M1 value: signbit · 8 | index of |2x| as an
 * int8 (1 → 1, 2 → 2, 3 → 3, 4 → 4, 6 → 5, 8 → 6, ≥ 12 → 7, anything else → 0). NaN casts to
 * int8 0 on CPU, so it writes index 0 with its sign bit (cast_to_fp4's NaN is positive).
 */
export function fp4Code(v: number): number {
  const neg = v < 0 || Object.is(v, -0) ? 8 : 0;
  if (v !== v) return 0;
  const i = Math.trunc(Math.abs(v * 2));
  const index = i === 1 ? 1 : i === 2 ? 2 : i === 3 ? 3 : i === 4 ? 4 : i === 6 ? 5 : i === 8 ? 6 : i >= 12 ? 7 : 0;
  return neg | index;
}

/**
 * fp4Code(castToFp4(x)) in one step: the sign bit is set exactly when x < 0 (a negative value
 * that rounds to 0 gives -0, code 8; -0 and NaN give code 0).
 */
export function fp4CodeOf(x: number): number {
  const neg = x < 0;
  const a = neg ? -x : x;
  // castToFp4's thresholds counted without branches (random weights defeat branch prediction)
  const i = +(a > 0.25) + +(a >= 0.75) + +(a > 1.25) + +(a >= 1.75) + +(a > 2.5) + +(a >= 3.5) + +(a > 5);
  return neg ? 8 | i : i;
}

/** pack_fp4_to_uint8: element 2k in the low nibble, 2k+1 in the high one (`codes.length` even). */
export function packFp4Codes(codes: Uint8Array, out: Uint8Array): void {
  for (let k = 0; k < out.length; k++) out[k] = (codes[2 * k]! & 15) | ((codes[2 * k + 1]! & 15) << 4);
}
