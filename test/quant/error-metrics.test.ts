import { describe, expect, it } from "vitest";
import { ErrorAccumulator, errorMetrics } from "../../src/quant/error-metrics.js";

describe("errorMetrics", () => {
  it("computes max abs error, RMSE, SQNR and cosine from their definitions", () => {
    const m = errorMetrics([1, 2, 3, -4], [1, 2.5, 3, -3]);
    // errors 0, -0.5, 0, -1; Σref² = 30, Σerr² = 1.25, Σapprox² = 1 + 6.25 + 9 + 9 = 25.25, dot = 1 + 5 + 9 + 12 = 27
    expect(m.count).toBe(4);
    expect(m.maxAbsError).toBe(1);
    expect(m.rmse).toBeCloseTo(Math.sqrt(1.25 / 4), 15);
    expect(m.sqnrDb).toBeCloseTo(10 * Math.log10(30 / 1.25), 12);
    expect(m.cosine).toBeCloseTo(27 / Math.sqrt(30 * 25.25), 15);
  });

  it("gives the same result streamed in uneven chunks as in one pass", () => {
    const n = 1000;
    const ref = new Float32Array(n).map((_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
    const approx = ref.map((v, i) => v + ((i % 13) - 6) * 1e-3);
    const whole = errorMetrics(ref, approx);
    const acc = new ErrorAccumulator();
    for (const [a, b] of [[0, 1], [1, 333], [333, 334], [334, 1000]] as const) acc.add(ref.subarray(a, b), approx.subarray(a, b));
    const streamed = acc.result();
    expect(streamed.count).toBe(whole.count);
    expect(streamed.maxAbsError).toBe(whole.maxAbsError);
    expect(streamed.sqnrDb).toBeCloseTo(whole.sqnrDb, 9);
    expect(streamed.cosine).toBeCloseTo(whole.cosine, 12);
    expect(streamed.rmse).toBeCloseTo(whole.rmse, 12);
  });

  it("reports an exact copy as infinite SQNR and cosine 1", () => {
    const m = errorMetrics([0.5, -2, 7], [0.5, -2, 7]);
    expect(m.sqnrDb).toBe(Infinity);
    expect(m.maxAbsError).toBe(0);
    expect(m.cosine).toBe(1);
  });

  it("handles all-zero tensors", () => {
    expect(errorMetrics([0, 0], [0, 0]).cosine).toBe(1);
    const m = errorMetrics([0, 0], [0, 1]);
    expect(m.sqnrDb).toBe(-Infinity);
    expect(m.cosine).toBe(0);
  });

  it("keeps agreeing NaN / Inf pairs out of the sums and flags one-sided ones", () => {
    const agree = errorMetrics([NaN, Infinity, 1], [NaN, Infinity, 1]);
    expect(agree.nonFiniteAgreeing).toBe(2);
    expect(agree.nonFiniteMismatches).toBe(0);
    expect(agree.count).toBe(1);
    expect(agree.sqnrDb).toBe(Infinity);
    const bad = errorMetrics([1, 2, -Infinity], [1, NaN, Infinity]);
    expect(bad.nonFiniteMismatches).toBe(2);
    expect(bad.maxAbsError).toBe(Infinity);
  });

  it("refuses arrays of different lengths", () => {
    expect(() => errorMetrics([1, 2], [1])).toThrow(/2 elements/);
  });
});
