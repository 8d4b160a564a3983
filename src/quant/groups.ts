/** How many groups of `blockSize` cover `length` elements: the last one may be partial. */
export function groupCount(length: number, blockSize: number): number {
  return Math.ceil(length / blockSize);
}

/**
 * What grouped int4's per-group parameters need besides each group's min and max (grouped.ts's
 * groupParameters and its SIMD twin group_params compute them from it).
 */
export interface GroupRule {
  /** Subnormals strictly inside ±tiny become zero (tensorflow, jax); 0 keeps them. */
  tiny: number;
  /** x / scale (every backend but jax) or x · f32(1 / scale) (jax). */
  divide: boolean;
  /** 2^bits − 1 as float32, and its float32 reciprocal (jax multiplies by it). */
  maxq: number;
  invMaxq: number;
  /** The flushed float32 epsilon, or 0 when epsilon is not positive (then it is not added). */
  eps: number;
  qminSigned: number;
  /** The zero point's bounds after the int8 cast (saturating or wrapping). */
  zLo: number;
  zHi: number;
}
