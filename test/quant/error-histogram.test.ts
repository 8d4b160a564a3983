import { describe, expect, it } from "vitest";
import { errorMetrics } from "../../src/quant/error-metrics.js";
import { errorHistogram, HISTOGRAM_BINS } from "../../src/quant/error-histogram.js";
import { gaussian } from "../pipeline/tamper.js";

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

describe("errorHistogram", () => {
  it("puts each (approx − reference) in its bin over [−limit, +limit], ±limit in the end bins", () => {
    const reference = [0, 0, 0, 0, 0, 1];
    const approx = [-1, -0.5, 0.25, 0.5, 1, 1];
    // 4 bins of width 0.5: [−1, −0.5) [−0.5, 0) [0, 0.5) [0.5, 1]
    expect(errorHistogram(reference, approx, 1, 4)).toEqual({ limit: 1, counts: [1, 1, 2, 2] });
  });

  it("an exact tensor (limit 0) has every value in the middle bin", () => {
    const h = errorHistogram([1, 2, 3], [1, 2, 3], 0);
    expect(h.counts).toHaveLength(HISTOGRAM_BINS);
    expect(h.counts[(HISTOGRAM_BINS - 1) / 2]).toBe(3);
    expect(sum(h.counts)).toBe(3);
  });

  it("leaves non-finite pairs out, so the bins add up to the metrics' count", () => {
    const reference = [0.5, NaN, Infinity, 1, -1, Infinity];
    const approx = [0.25, NaN, Infinity, 0.75, -1, 2];
    const m = errorMetrics(reference, approx);
    const finiteMax = 0.25;
    expect(sum(errorHistogram(reference, approx, finiteMax).counts)).toBe(m.count);
    expect(m.count).toBe(3);
  });

  it("counts every value of a tensor longer than one block, the same as a direct count", () => {
    const n = 200_003;
    const reference = gaussian(n, 7);
    const approx = reference.map((r, i) => Math.fround(r + ((i % 13) - 6) * 1e-3));
    const limit = errorMetrics(reference, approx).maxAbsError;
    const h = errorHistogram(reference, approx, limit);
    expect(sum(h.counts)).toBe(n);
    const direct = new Array<number>(HISTOGRAM_BINS).fill(0);
    for (let i = 0; i < n; i++) {
      const d = approx[i]! - reference[i]!;
      direct[Math.min(HISTOGRAM_BINS - 1, Math.max(0, Math.floor(((d + limit) / (2 * limit)) * HISTOGRAM_BINS)))]!++;
    }
    expect(h.counts).toEqual(direct);
    // 13 error levels, symmetric around 0: both end bins and the middle one are used.
    expect(h.counts[0]).toBeGreaterThan(0);
    expect(h.counts[HISTOGRAM_BINS - 1]).toBeGreaterThan(0);
    expect(h.counts[(HISTOGRAM_BINS - 1) / 2]).toBeGreaterThan(0);
  });

  it("refuses arrays of different lengths and a limit that is not finite", () => {
    expect(() => errorHistogram([1, 2], [1], 1)).toThrow(/2 elements, approximation 1/);
    expect(() => errorHistogram([1], [1], Infinity)).toThrow(/not finite/);
  });
});
