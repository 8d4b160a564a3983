/**
 * Values of one tensor as float32 and their summary (`kquant inspect --stats`): two passes over
 * one tensor in memory (SIMD kernels where the engine has them), sums in float64 so the mean and
 * std of large tensors stay accurate.
 */
import type { StDType } from "../../formats/types.js";
import { float32Source, floatValues } from "../float-values.js";
import { simdLaneSums, simdSquaresAndHistogram, type LaneSums } from "../../quant/wasm/stats-kernels.js";
import { lengthOf, simdActive, type Float32Source } from "../../quant/wasm/kernels.js";
import { bf16BitsToF32, f16BitsToF32 } from "../../quant/convert.js";

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

/**
 * The stats of a floating tensor's bytes (float-values.ts reads them as float32). float16 and
 * bfloat16 go to the kernels as their bits, widened block by block: a float32 copy of the whole
 * tensor would hold twice its bytes more in memory.
 */
export function tensorStatsOf(dtype: StDType, bytes: Uint8Array, bins = 10): TensorStats {
  const inPlace = simdActive() ? float32Source(dtype, bytes) : null;
  return tensorStats(inPlace ?? floatValues(dtype, bytes)!, bins);
}

/** Elements [from, n) of `src` as float32 (a few: the tail the kernels leave, or all without them). */
function valuesFrom(src: Float32Source, from: number): Float32Array {
  if (src instanceof Float32Array) return src.subarray(from);
  const out = new Float32Array(src.bits.length - from);
  (src.kind === "bfloat16" ? bf16BitsToF32 : f16BitsToF32)(src.bits.subarray(from), out);
  return out;
}

/**
 * The summary of `values`. Sums are float64 in four lanes (element i in lane i % 4, the lanes
 * added as (0 + 1) + (2 + 3)): the SIMD kernels' order, which the scalar loops here keep, so
 * the figures are the same bits either way. A zero min or max is reported as +0.
 */
export function tensorStats(values: Float32Source, bins = 10): TensorStats {
  const n = lengthOf(values);
  const first = laneSums(values);
  const { zeros, nan, inf } = first;
  const finite = n - nan - inf;
  const counts = new Array<number>(bins).fill(0);
  if (finite === 0) {
    return { count: n, min: null, max: null, mean: null, std: null, abs_max: null, zeros, nan, inf, histogram: { lo: 0, hi: 0, counts } };
  }
  let min = Infinity;
  let max = -Infinity;
  for (let l = 0; l < 4; l++) {
    if (first.min[l]! < min) min = first.min[l]!;
    if (first.max[l]! > max) max = first.max[l]!;
  }
  min += 0; // -0 → +0
  max += 0;
  const mean = addLanes(first.sums) / finite;
  const width = (max - min) / bins;
  const second = secondPass(values, mean, min, width, bins);
  const sq = addLanes(second.squares);
  const binCounts = second.counts ?? Float64Array.from({ length: bins }, (_, b) => (b === 0 ? finite : 0));
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

const addLanes = (l: Float64Array): number => l[0]! + l[1]! + (l[2]! + l[3]!);

/** stats_sums (stats-module.ts): on SIMD up to n & ~3, the rest (or all, without SIMD) here, in the same lanes. */
function laneSums(src: Float32Source): LaneSums {
  const n = lengthOf(src);
  const fast = simdLaneSums(src);
  const r = fast ?? { sums: new Float64Array(4), min: new Float32Array(4).fill(Infinity), max: new Float32Array(4).fill(-Infinity), zeros: 0, nan: 0, inf: 0 };
  const from = fast ? n & ~3 : 0;
  const values = valuesFrom(src, from);
  for (let i = from; i < n; i++) {
    const v = values[i - from]!;
    if (v - v !== 0) {
      if (v !== v) r.nan++;
      else r.inf++;
      continue;
    }
    const l = i & 3;
    if (v === 0) r.zeros++;
    if (v < r.min[l]!) r.min[l] = v;
    if (v > r.max[l]!) r.max[l] = v;
    r.sums[l] += v;
  }
  return r;
}

/**
 * Per lane Σ (x − mean)² of the finite values (as stats_sq) and, when width > 0, their counts in
 * `bins` bins of `width` from `lo` (as stats_hist); null counts when width is 0.
 */
function secondPass(src: Float32Source, mean: number, lo: number, width: number, bins: number): { squares: Float64Array; counts: Float64Array | null } {
  const n = lengthOf(src);
  const fast = simdSquaresAndHistogram(src, mean, lo, width, bins);
  const squares = fast?.squares ?? new Float64Array(4);
  const from = fast ? n & ~3 : 0;
  const tail = valuesFrom(src, from);
  for (let i = from; i < n; i++) {
    const v = tail[i - from]!;
    if (v - v !== 0) continue;
    const d = v - mean;
    squares[i & 3] += d * d;
  }
  if (fast || !(width > 0)) return { squares, counts: fast?.counts ?? null };
  // Without the kernels `tail` is the whole tensor (from 0).
  const counts = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const v = tail[i]!;
    if (v - v !== 0) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) / width))]!++;
  }
  return { squares, counts };
}
