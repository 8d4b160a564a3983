/**
 * Values of one tensor as float32 and their summary (`kquant inspect --stats`): two passes over
 * one tensor in memory, sums in float64 so the mean and std of large tensors stay accurate.
 */
import type { StDType } from "../formats/types.js";
import { bf16BitsToF32, f16BitsToF32, f64ToF32 } from "../quant/convert.js";
import { decodeFloat8 } from "../quant/float8.js";

/** Dtypes `floatValues` can read. */
export const FLOAT_DTYPES: ReadonlySet<StDType> = new Set<StDType>(["F32", "F16", "BF16", "F64", "F8_E4M3", "F8_E5M2"]);

/** Little-endian tensor bytes as float32 values (float8 decoded to their code values), or null for other dtypes. */
export function floatValues(dtype: StDType, bytes: Uint8Array): Float32Array | null {
  const width = dtype === "F64" ? 8 : dtype === "F32" ? 4 : dtype === "F16" || dtype === "BF16" ? 2 : 1;
  const aligned = bytes.byteOffset % width === 0 ? bytes : bytes.slice();
  const count = aligned.byteLength / width;
  const out = new Float32Array(count);
  switch (dtype) {
    case "F32":
      out.set(new Float32Array(aligned.buffer, aligned.byteOffset, count));
      return out;
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

const BARS = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

/** One character per bin, the tallest bin a full block; empty bins a space. */
export function sparkline(counts: readonly number[]): string {
  const top = Math.max(0, ...counts);
  if (top === 0) return " ".repeat(counts.length);
  return counts.map((c) => (c === 0 ? " " : BARS[Math.min(BARS.length - 1, Math.floor((c / top) * BARS.length - 1e-9))]!)).join("");
}
