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

/**
 * Where element (r, c)'s group parameters live. Both layouts walk the input in runs that are
 * contiguous in memory, along which the parameter index advances by `step`: a whole row with
 * step 1 when grouping along axis 0, one group of a row with step 0 along the last axis.
 */
export interface GroupLayout {
  rows: number;
  cols: number;
  blockSize: number;
  nGroups: number;
  alongLast: boolean;
}

/**
 * Keras pads a partial last group with zeros before min / max when there is more than one group:
 * 0 joins the range of the last group of each row (axis 1) or column (axis 0).
 */
export function padLastGroups(lo: Float32Array, hi: Float32Array, L: GroupLayout): void {
  const along = L.alongLast ? L.cols : L.rows;
  if (L.nGroups <= 1 || along % L.blockSize === 0) return;
  const others = L.alongLast ? L.rows : L.cols;
  const first = L.alongLast ? L.nGroups - 1 : (L.nGroups - 1) * L.cols;
  const stride = L.alongLast ? L.nGroups : 1;
  for (let o = 0, i = first; o < others; o++, i += stride) {
    lo[i] = Math.min(lo[i]!, 0);
    hi[i] = Math.max(hi[i]!, 0);
  }
}
