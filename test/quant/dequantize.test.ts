import { describe, expect, it } from "vitest";
import {
  dequantizeDivide,
  dequantizeMultiply,
  dequantizeZeroPoint,
  scaleLayout,
  scaleLayoutProblem,
} from "../../src/quant/dequantize.js";
import { sizeOf } from "../../src/quant/tensor.js";

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const f32 = (words: number[]) => new Float32Array(new Uint32Array(words).buffer);

/** Index of the scale entry for flat index i, by explicit coordinates (the test's own broadcasting). */
function naiveScaleIndex(shape: number[], scaleShape: number[], i: number, group?: { axis: number; blockSize: number }): number {
  const coords: number[] = [];
  let rest = i;
  for (let d = shape.length - 1; d >= 0; d--) {
    coords[d] = rest % shape[d]!;
    rest = Math.floor(rest / shape[d]!);
  }
  if (sizeOf(scaleShape) === 1 && !group) return 0;
  let index = 0;
  for (let d = 0; d < shape.length; d++) {
    let c = scaleShape[d] === 1 ? 0 : coords[d]!;
    if (group && d === group.axis) c = Math.floor(coords[d]! / group.blockSize);
    index = index * scaleShape[d]! + c;
  }
  return index;
}

function seeded(n: number, seed: number, lo: number, hi: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return lo + (s % (hi - lo + 1));
  });
}

describe("scaleLayout", () => {
  const cases: { shape: number[]; scale: number[]; group?: { axis: number; blockSize: number } }[] = [
    { shape: [5, 7], scale: [5, 1] },
    { shape: [5, 7], scale: [1, 7] },
    { shape: [5, 7], scale: [1, 1] },
    { shape: [5, 7], scale: [] },
    { shape: [3, 4, 5], scale: [3, 1, 5] },
    { shape: [3, 4, 5], scale: [1, 4, 1] },
    { shape: [10, 6], scale: [3, 6], group: { axis: 0, blockSize: 4 } },
    { shape: [6, 10], scale: [6, 3], group: { axis: 1, blockSize: 4 } },
    { shape: [6, 10], scale: [6, 1], group: { axis: 1, blockSize: 16 } },
    { shape: [4], scale: [1] },
    { shape: [], scale: [] },
  ];
  for (const c of cases) {
    it(`maps every element of [${c.shape}] to its scale [${c.scale}]${c.group ? ` grouped by ${c.group.blockSize} on axis ${c.group.axis}` : ""}`, () => {
      const n = sizeOf(c.shape);
      const scale = new Float32Array(sizeOf(c.scale)).map((_, i) => i + 1);
      const out = new Float32Array(n);
      // Multiplying ones by the scale exposes which scale entry each element used.
      dequantizeMultiply(new Float32Array(n).fill(1), scale, scaleLayout(c.shape, c.scale, c.group), out);
      for (let i = 0; i < n; i++) expect(out[i], `element ${i}`).toBe(naiveScaleIndex(c.shape, c.scale, i, c.group) + 1);
    });
  }

  it("explains scale shapes that do not fit", () => {
    expect(scaleLayoutProblem([5, 7], [5, 2])).toMatch(/does not fit/);
    expect(scaleLayoutProblem([5, 7], [5, 7, 1])).toMatch(/rank 3/);
    expect(scaleLayoutProblem([10, 6], [2, 6], { axis: 0, blockSize: 4 })).toMatch(/grouped by 4/);
    expect(scaleLayoutProblem([10, 6], [3, 6], { axis: 0, blockSize: 4 })).toBeNull();
    expect(() => scaleLayout([5, 7], [7, 5])).toThrow(/does not fit/);
  });
});

describe("dequantizeDivide (int8 / int4: q / scale as Keras on jax computes it)", () => {
  it("matches Keras 3.15.1 bit for bit where XLA divides by a broadcast scale via its reciprocal", () => {
    // keras.ops.divide(cast(q, float32), s) with s of shape (1, 4), recorded with /tmp/kvenv (jax CPU).
    const q = new Int8Array([3, -7, 100, 127, 1, -128, 55, 9]);
    const s = f32([0x41c31c60, 0x43f9cc8d, 0x43a318e7, 0x42ea87bb]);
    const keras = [0x3dfbeb18, 0xbc658f80, 0x3e9cf628, 0x3f8aa047, 0x3d27f210, 0xbe832d6e, 0x3e2ca85f, 0x3d9d2ead];
    const out = new Float32Array(8);
    dequantizeDivide(q, s, scaleLayout([2, 4], [1, 4]), out);
    expect(bits(out)).toEqual(keras);
    // ...and true division would differ there, so the test can tell the two apart.
    const exact = new Float32Array(8).map((_, i) => q[i]! / s[i % 4]!);
    expect(bits(exact)).not.toEqual(keras);
  });

  it("divides exactly when the scale has the values' own shape (no broadcast, no rewrite)", () => {
    const q = new Int8Array([3, -7, 100, 127]);
    const s = f32([0x41c31c60, 0x43f9cc8d, 0x43a318e7, 0x42ea87bb]);
    const out = new Float32Array(4);
    dequantizeDivide(q, s, scaleLayout([1, 4], [1, 4]), out);
    expect(Array.from(out)).toEqual(Array.from(q).map((v, i) => Math.fround(v / s[i]!)));
  });

  it("per-channel along either axis: q * float32(1 / scale) for every element", () => {
    const shape = [6, 9];
    const q = Int8Array.from(seeded(54, 7, -127, 127));
    for (const scaleShape of [[6, 1], [1, 9]]) {
      const scale = Float32Array.from(seeded(sizeOf(scaleShape), 3, 1, 1000).map((v) => v / 7));
      const out = new Float32Array(54);
      dequantizeDivide(q, scale, scaleLayout(shape, scaleShape), out);
      for (let i = 0; i < 54; i++) {
        const s = scale[naiveScaleIndex(shape, scaleShape, i)]!;
        expect(out[i]).toBe(Math.fround(q[i]! * Math.fround(1 / s)));
      }
    }
  });

  it("flushes subnormal results to zero like XLA:CPU", () => {
    const out = new Float32Array(2);
    // 1 / 2^127 is subnormal in float32 (flushed); 2 / 2^127 = 2^-126 is the smallest normal (kept).
    dequantizeDivide(new Int8Array([1, 2]), new Float32Array([2 ** 127, 2 ** 127]), scaleLayout([1, 2], [1, 2]), out);
    expect(Array.from(out)).toEqual([0, 2 ** -126]);
  });

  it("rejects arrays whose sizes disagree with the layout", () => {
    expect(() => dequantizeDivide(new Int8Array(5), new Float32Array(2), scaleLayout([2, 3], [2, 1]), new Float32Array(6))).toThrow(/values has 5/);
  });
});

describe("dequantizeZeroPoint (grouped int4: scale * (q - zero))", () => {
  it("uses each group's scale and zero point, including a short last group", () => {
    const shape = [10, 3];
    const group = { axis: 0, blockSize: 4 };
    const q = Int8Array.from(seeded(30, 11, -8, 7));
    const scale = Float32Array.from([0.5, 0.25, 0.125, 1.5, 2.5, 3.5, 0.01, 0.02, 0.03]);
    const zero = Int8Array.from([-3, 0, 2, 7, -8, 1, 4, -1, 0]);
    const out = new Float32Array(30);
    dequantizeZeroPoint(q, scale, zero, scaleLayout(shape, [3, 3], group), out);
    for (let i = 0; i < 30; i++) {
      const g = naiveScaleIndex(shape, [3, 3], i, group);
      expect(out[i]).toBe(Math.fround(scale[g]! * (q[i]! - zero[g]!)));
    }
  });
});

describe("dequantizeMultiply (float8: x * scale)", () => {
  it("multiplies in float32 with one scalar scale", () => {
    const x = Float32Array.from([448, -0.015625, 3.5, 0]);
    const s = Float32Array.from([Math.fround(0.1 / 448)]);
    const out = new Float32Array(4);
    dequantizeMultiply(x, s, scaleLayout([2, 2], []), out);
    expect(Array.from(out)).toEqual(Array.from(x).map((v) => Math.fround(v * s[0]!)));
  });
});
