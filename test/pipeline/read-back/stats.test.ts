/**
 * inspect --stats's summary: the SIMD kernels and the scalar loops give the same bits (the same
 * four float64 lanes), and both agree with a plain one-accumulator reference: exactly for the
 * counts, min, max and histogram, to rounding for the mean and std.
 */
import { describe, expect, it } from "vitest";
import { lcg, scalar } from "../../support/simd.js";
import { tensorStats, tensorStatsOf, type TensorStats } from "../../../src/pipeline/read-back/stats.js";
import { bf16BitsToF32, f16BitsToF32 } from "../../../src/quant/convert.js";

/** The summary as stats.ts computed it before the lanes: one sequential float64 sum. */
function reference(values: Float32Array, bins: number): TensorStats {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let finite = 0;
  let zeros = 0;
  let nan = 0;
  let inf = 0;
  for (const v of values) {
    if (v !== v) nan++;
    else if (!Number.isFinite(v)) inf++;
    else {
      if (v === 0) zeros++;
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
      finite++;
    }
  }
  const counts = new Array<number>(bins).fill(0);
  if (finite === 0) return { count: values.length, min: null, max: null, mean: null, std: null, abs_max: null, zeros, nan, inf, histogram: { lo: 0, hi: 0, counts } };
  const mean = sum / finite;
  const width = (max - min) / bins;
  let sq = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    sq += (v - mean) ** 2;
    counts[width > 0 ? Math.min(bins - 1, Math.floor((v - min) / width)) : 0]!++;
  }
  return { count: values.length, min: min + 0, max: max + 0, mean, std: Math.sqrt(sq / finite), abs_max: Math.max(-min, max), zeros, nan, inf, histogram: { lo: min + 0, hi: max + 0, counts } };
}

/** Weights with NaN, ±Inf, zeros of both signs, subnormals and a few large values. */
function awkward(n: number, seed: number): Float32Array {
  const r = lcg(seed);
  const x = new Float32Array(n);
  const bits = new Uint32Array(x.buffer);
  for (let i = 0; i < n; i++) {
    const u = r();
    if (u < 0.9) x[i] = (r() - 0.5) * 0.1;
    else if (u < 0.92) x[i] = NaN;
    else if (u < 0.93) x[i] = r() < 0.5 ? Infinity : -Infinity;
    else if (u < 0.96) x[i] = r() < 0.5 ? 0 : -0;
    else if (u < 0.98) bits[i] = (r() * 0x7fffff) | (r() < 0.5 ? 0x80000000 : 0);
    else x[i] = (r() - 0.5) * 3e4;
  }
  return x;
}

describe("tensorStats", () => {
  const cases: [string, Float32Array][] = [
    ["awkward values over several kernel blocks, odd length", awkward(150_003, 1)],
    ["awkward values, fewer than a vector", awkward(3, 2)],
    ["one value", Float32Array.of(-2.5)],
    ["constant", new Float32Array(1001).fill(0.25)],
    ["zeros of both signs only", Float32Array.of(-0, 0, -0, -0, 0)],
    ["nothing finite", Float32Array.of(NaN, Infinity, -Infinity, NaN, NaN)],
    ["empty", new Float32Array(0)],
  ];
  for (const [name, values] of cases) {
    for (const bins of [10, 7]) {
      it(`${name} (${bins} bins): SIMD and scalar loops agree bit for bit, and with a one-sum reference`, () => {
        const fast = tensorStats(values, bins);
        const slow = scalar(() => tensorStats(values, bins));
        expect(fast).toEqual(slow);
        for (const key of ["mean", "std"] as const) expect(Object.is(fast[key], slow[key])).toBe(true);
        const want = reference(values, bins);
        const { mean, std, ...exact } = fast;
        const { mean: wantMean, std: wantStd, ...wantExact } = want;
        expect(exact).toEqual(wantExact);
        if (wantMean === null) expect(mean).toBeNull();
        else {
          // Relative to the spread: the lanes only reorder float64 additions.
          expect(Math.abs(mean! - wantMean) / (wantStd! || 1)).toBeLessThan(1e-12);
          expect(Math.abs(std! - wantStd!) / (wantStd! || 1)).toBeLessThan(1e-12);
        }
      });
    }
  }

  it("reports a zero min or max as +0", () => {
    const s = tensorStats(Float32Array.of(-0, 1, 2, 3, 4));
    expect(Object.is(s.min, 0)).toBe(true);
    expect(tensorStats(Float32Array.of(-3, -0)).max).toBe(0);
    expect(Object.is(tensorStats(Float32Array.of(-3, -0)).max, 0)).toBe(true);
  });

  it("float16 and bfloat16 bits widened block by block give the stats of their float32 values", () => {
    const r = lcg(7);
    for (const n of [150_003, 5, 2]) {
      const bits = Uint16Array.from({ length: n }, () => Math.floor(r() * 65536));
      const bytes = new Uint8Array(bits.buffer);
      for (const [dtype, widen] of [["BF16", bf16BitsToF32], ["F16", f16BitsToF32]] as const) {
        const wide = new Float32Array(n);
        widen(bits, wide);
        const got = tensorStatsOf(dtype, bytes, 10);
        expect(got).toEqual(tensorStats(wide, 10));
        expect(got).toEqual(scalar(() => tensorStatsOf(dtype, bytes, 10)));
        if (n > 1000) expect(got.nan + got.inf).toBeGreaterThan(0); // random bits hold NaN and Inf patterns
      }
    }
  });
});
