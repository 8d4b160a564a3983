import { describe, expect, it } from "vitest";
import { broadcastLayout, broadcastShapes, expandTo } from "../../src/quant/broadcast.js";
import { sizeOf } from "../../src/quant/tensor.js";

/** numpy broadcasting by explicit coordinates: the index into `shape` for flat index i of `target`. */
function sourceIndex(i: number, shape: readonly number[], target: readonly number[]): number {
  let rem = i;
  let idx = 0;
  let stride = 1;
  const coords = target.map(() => 0);
  for (let d = target.length - 1; d >= 0; d--) {
    coords[d] = rem % target[d]!;
    rem = Math.floor(rem / target[d]!);
  }
  for (let k = shape.length - 1; k >= 0; k--) {
    const c = coords[target.length - shape.length + k]!;
    idx += (shape[k] === 1 ? 0 : c) * stride;
    stride *= shape[k]!;
  }
  return idx;
}

const cases: [number[], number[]][] = [
  [[], [3, 4]],
  [[4], [3, 4]],
  [[3, 1], [3, 4]],
  [[1, 4], [2, 3, 4]],
  [[3, 1], [2, 3, 4]],
  [[2, 1, 4], [2, 3, 4]],
  [[2, 3, 1], [2, 3, 1]],
  [[5, 1, 1, 7], [5, 2, 3, 7]],
];

describe("broadcastLayout / expandTo", () => {
  for (const [shape, target] of cases) {
    it(`${JSON.stringify(shape)} over ${JSON.stringify(target)} picks numpy's element for every index`, () => {
      const values = Float32Array.from({ length: sizeOf(shape) }, (_, i) => i + 0.5);
      const layout = broadcastLayout(values, shape, target, "t");
      const full = expandTo(values, shape, target);
      for (let i = 0; i < sizeOf(target); i++) {
        const want = values[sourceIndex(i, shape, target)];
        expect(layout.values[Math.floor(i / layout.inner) % layout.period]).toBe(want);
        expect(full[i]).toBe(want);
      }
    });
  }

  it("refuses a parameter that would grow the target, and shapes that do not broadcast", () => {
    expect(() => broadcastLayout(new Float32Array(6), [2, 3], [3], "scale")).toThrow(/scale: shape \[2,3\] would broadcast/);
    expect(() => broadcastShapes([2, 3], [4, 3], "x")).toThrow(/x: shapes \[2,3\] and \[4,3\] do not broadcast/);
    expect(broadcastShapes([2, 1, 3], [4, 1], "x")).toEqual([2, 4, 3]);
  });
});
