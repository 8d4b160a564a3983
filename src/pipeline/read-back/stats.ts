/**
 * Values of one tensor as float32 and their summary (`kquant inspect --stats`): two passes over
 * one tensor in memory, sums in float64 so the mean and std of large tensors stay accurate.
 */
import type { StDType } from "../../formats/types.js";
import { floatValues } from "../float-values.js";

export interface TensorStats {
  count: number;
  /** Over finite values (null when there are none). */
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  abs_max: number | null;
  zeros: number;
  nan: number;
  inf: number;
  /** Counts of finite values in equal-width bins from min to max. */
  histogram: { lo: number; hi: number; counts: number[] };
}

/** The stats of a floating tensor's bytes (float-values.ts reads them as float32). */
export function tensorStatsOf(dtype: StDType, bytes: Uint8Array, bins = 10): TensorStats {
  return tensorStats(floatValues(dtype, bytes)!, bins);
}

export function tensorStats(values: Float32Array, bins = 10): TensorStats {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let finite = 0;
  let zeros = 0;
  let nan = 0;
  let inf = 0;
  const n = values.length;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (v !== v) {
      nan++;
      continue;
    }
    if (v === Infinity || v === -Infinity) {
      inf++;
      continue;
    }
    if (v === 0) zeros++;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    finite++;
  }
  const counts = new Array<number>(bins).fill(0);
  if (finite === 0) {
    return { count: n, min: null, max: null, mean: null, std: null, abs_max: null, zeros, nan, inf, histogram: { lo: 0, hi: 0, counts } };
  }
  const mean = sum / finite;
  const width = (max - min) / bins;
  const binCounts = new Float64Array(bins);
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    const d = v - mean;
    sq += d * d;
    const b = width > 0 ? Math.min(bins - 1, Math.floor((v - min) / width)) : 0;
    binCounts[b]!++;
  }
  for (let b = 0; b < bins; b++) counts[b] = binCounts[b]!;
  return {
    count: n,
    min,
    max,
    mean,
    std: Math.sqrt(sq / finite),
    abs_max: Math.max(-min, max),
    zeros,
    nan,
    inf,
    histogram: { lo: min, hi: max, counts },
  };
}
