import { describe, expect, it } from "vitest";
import type { QuantDType } from "../../src/quant/absmax.js";
import { absMaxQuantizeGroupedWithZeroPoint } from "../../src/quant/grouped.js";
import { KquantError } from "../../src/errors.js";
import { bytesOf, decodeTensor, intOptions, loadGolden, type GoldenTensor } from "../support/golden.js";

interface GroupedCase {
  name: string;
  x: GoldenTensor;
  block_size: number;
  value_range: [number, number] | null;
  dtype: QuantDType | null;
  epsilon: number | null;
  values: GoldenTensor;
  scale: GoldenTensor;
  zero_point: GoldenTensor;
  numpy_matches: boolean;
}

const golden = loadGolden<GroupedCase>("grouped");

function expectSame(actual: { dtype: string; shape: number[]; data: Parameters<typeof bytesOf>[0] }, want: GoldenTensor) {
  const e = decodeTensor(want);
  expect(actual.dtype).toBe(e.dtype);
  expect(actual.shape).toEqual(e.shape);
  expect(bytesOf(actual.data)).toEqual(bytesOf(e.data));
}

describe("absMaxQuantizeGroupedWithZeroPoint matches Keras 3.15.1 (default path) bit for bit", () => {
  it("has the vectors of the pinned Keras", () => {
    expect(golden.keras_version).toBe("3.15.1");
    expect(golden.cases.length).toBeGreaterThan(30);
  });
  for (const c of golden.cases) {
    it(c.name, () => {
      const opts = intOptions<QuantDType>(c);
      const r = absMaxQuantizeGroupedWithZeroPoint(decodeTensor(c.x), c.block_size, opts);
      expectSame(r.values, c.values);
      expectSame(r.scale, c.scale);
      expectSame(r.zeroPoint, c.zero_point);
    });
  }
  it("pins the default path, which differs from Keras's numpy path", () => {
    // If Keras ever made the two paths agree, grouped.ts's comment would be wrong.
    expect(golden.cases.filter((c) => !c.numpy_matches).length).toBeGreaterThan(0);
  });
});

describe("absMaxQuantizeGroupedWithZeroPoint input checks", () => {
  const t = (shape: number[]) => ({ dtype: "float32" as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  it("rejects non-2-D, empty, and bad block sizes", () => {
    expect(() => absMaxQuantizeGroupedWithZeroPoint(t([4]), 2)).toThrow(KquantError);
    expect(() => absMaxQuantizeGroupedWithZeroPoint(t([0, 4]), 2)).toThrow(/empty/);
    expect(() => absMaxQuantizeGroupedWithZeroPoint(t([4, 4]), 0)).toThrow(/block size/);
    expect(() => absMaxQuantizeGroupedWithZeroPoint(t([4, 4]), 1.5)).toThrow(/block size/);
    expect(() => absMaxQuantizeGroupedWithZeroPoint(t([4, 4]), 2, { valueRange: [3, 3] })).toThrow(/levels/);
  });
  it("gives ceil(rows / block) groups", () => {
    const r = absMaxQuantizeGroupedWithZeroPoint(t([10, 3]), 4);
    expect(r.scale.shape).toEqual([3, 3]);
    expect(r.zeroPoint.shape).toEqual([3, 3]);
    expect(r.values.shape).toEqual([10, 3]);
  });
});
