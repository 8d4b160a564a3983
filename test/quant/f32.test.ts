import { describe, expect, it } from "vitest";
import { MIN_NORMAL, f32Add, f32Div, f32Mul, f32Sub, flushSubnormal } from "../../src/quant/f32.js";

describe("float32 ops with XLA:CPU flush-to-zero", () => {
  it("flushes subnormals to a zero of the same sign and keeps the smallest normal", () => {
    expect(Object.is(flushSubnormal(2 ** -149), 0)).toBe(true);
    expect(Object.is(flushSubnormal(-(2 ** -127)), -0)).toBe(true);
    expect(flushSubnormal(MIN_NORMAL)).toBe(2 ** -126);
    expect(flushSubnormal(-MIN_NORMAL)).toBe(-(2 ** -126));
    expect(Number.isNaN(flushSubnormal(NaN))).toBe(true);
  });

  it("rounds each result once to float32, then flushes it", () => {
    expect(f32Add(1, 2 ** -24)).toBe(1); // tie → even
    expect(f32Add(1, 3 * 2 ** -24)).toBe(1 + 2 ** -22);
    expect(f32Sub(1, 2 ** -25)).toBe(1);
    expect(f32Mul(0.1, 3)).toBe(Math.fround(Math.fround(0.1) * 3));
    expect(Object.is(f32Mul(-(2 ** -100), 2 ** -30), -0)).toBe(true);
    expect(Object.is(f32Div(2 ** -120, 2 ** 10), 0)).toBe(true);
    expect(f32Div(1, 3)).toBe(Math.fround(1 / 3));
    expect(f32Mul(2 ** 100, 2 ** 100)).toBe(Infinity);
  });
});
