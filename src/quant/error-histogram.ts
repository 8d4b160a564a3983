/**
 * The distribution of one tensor's errors (dequantized − original) in a fixed number of equal bins
 * over [−limit, +limit], where `limit` is the tensor's max abs error (known from its metrics). It
 * is counted block by block over the two arrays, so no error array is ever held: memory is the
 * bins alone.
 */

/** Bins per histogram: odd, so that an error of zero falls in the middle of the middle bin. */
export const HISTOGRAM_BINS = 41;

export interface ErrorHistogram {
  /** The bins cover [−limit, +limit]; `limit` ≥ 0 is the largest finite |dequantized − original|. */
  limit: number;
  /**
   * counts[i] (length `bins`): errors in [−limit + i·w, −limit + (i+1)·w), w = 2·limit / bins, the last bin
   * closed. With limit 0 (an exact tensor) every error is in the middle bin. Non-finite pairs are left out,
   * so the counts add up to the metrics' `count`.
   */
  counts: number[];
}

const BLOCK = 64 * 1024;

/**
 * Counts `approx[i] − reference[i]` for every finite pair into `bins` bins over [−limit, +limit].
 * reference, approx: the same length (elements of one tensor, flat); limit: finite and ≥ 0.
 */
export function errorHistogram(reference: ArrayLike<number>, approx: ArrayLike<number>, limit: number, bins = HISTOGRAM_BINS): ErrorHistogram {
  if (reference.length !== approx.length) {
    throw new Error(`error histogram: reference has ${reference.length} elements, approximation ${approx.length}`);
  }
  if (!(limit >= 0 && limit < Infinity)) throw new Error(`error histogram: limit ${limit} is not finite and ≥ 0`);
  if (!(Number.isInteger(bins) && bins > 0)) throw new Error(`error histogram: ${bins} bins`);
  const counts = new Float64Array(bins);
  // In blocks, as ErrorAccumulator does: V8 optimises a function it has entered a few times.
  for (let start = 0; start < reference.length; start += BLOCK) {
    countRange(reference, approx, start, Math.min(reference.length, start + BLOCK), limit, counts);
  }
  return { limit, counts: Array.from(counts) };
}

function countRange(reference: ArrayLike<number>, approx: ArrayLike<number>, from: number, to: number, limit: number, counts: Float64Array): void {
  const bins = counts.length;
  const middle = (bins - 1) >> 1;
  const perUnit = limit > 0 ? bins / (2 * limit) : 0;
  for (let i = from; i < to; i++) {
    const d = approx[i]! - reference[i]!;
    if (!Number.isFinite(d)) continue;
    // Rounding can put ±limit a hair outside the range: the end bins take it.
    const bin = limit > 0 ? Math.min(bins - 1, Math.max(0, Math.floor((d + limit) * perUnit))) : middle;
    counts[bin]!++;
  }
}
