import { describe, expect, it } from "vitest";
import { allocQuant, type QuantDType } from "../../src/quant/absmax.js";
import { absMaxQuantizeGroupedWithZeroPoint } from "../../src/quant/grouped.js";
import { KquantError } from "../../src/errors.js";
import type { Tensor } from "../../src/quant/tensor.js";
import { useSimd } from "../../src/quant/wasm/kernels.js";
import { KERAS_BACKENDS, bytesOf, decodeTensor, intOptions, loadGolden, type GoldenTensor } from "../support/golden.js";

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

const golden = loadGolden<GroupedCase>("grouped", "jax");

function expectSame(actual: { dtype: string; shape: number[]; data: Parameters<typeof bytesOf>[0] }, want: GoldenTensor) {
  const e = decodeTensor(want);
  expect(actual.dtype).toBe(e.dtype);
  expect(actual.shape).toEqual(e.shape);
  expect(bytesOf(actual.data)).toEqual(bytesOf(e.data));
}

for (const backend of KERAS_BACKENDS) {
  const vectors = loadGolden<GroupedCase>("grouped", backend);
  describe(`absMaxQuantizeGroupedWithZeroPoint matches Keras 3.15.1 (${backend} CPU, default path) bit for bit`, () => {
    it("has the vectors of the pinned Keras", () => {
      expect(vectors.keras_version).toBe("3.15.1");
      expect(vectors.cases.length).toBeGreaterThan(30);
    });
    for (const c of vectors.cases) for (const simd of [true, false]) {
      it(`${c.name}${simd ? "" : " (scalar loops)"}`, () => {
        const opts = { ...intOptions<QuantDType>(c), backend };
        const x = decodeTensor(c.x);
        const range = c.value_range ?? [-8, 7];
        const nonFinite = Array.from(x.data as Float32Array).some((v) => !Number.isFinite(v));
        if (backend === "tensorflow" && (range[1] - range[0] + 1 > 256 || (nonFinite && c.dtype !== "float32"))) {
          // TensorFlow's cast of what int8 cannot hold (NaN included) depends on the element's position.
          expect(() => absMaxQuantizeGroupedWithZeroPoint(x, c.block_size, opts)).toThrow(/depends on (the element's|its) position/);
          return;
        }
        const was = useSimd(simd);
        try {
          const r = absMaxQuantizeGroupedWithZeroPoint(decodeTensor(c.x), c.block_size, opts);
          expectSame(r.values, c.values);
          expectSame(r.scale, c.scale);
          expectSame(r.zeroPoint, c.zero_point);
        } finally {
          useSimd(was);
        }
      });
    }
  });
}

describe("absMaxQuantizeGroupedWithZeroPoint (jax vectors)", () => {
  it("writes the same values into a caller-owned array", () => {
    for (const c of golden.cases) {
      const opts = intOptions<QuantDType>(c);
      const ev = decodeTensor(c.values);
      const out = allocQuant(ev.dtype as QuantDType, ev.data.length + 4).fill(77).subarray(4);
      const r = absMaxQuantizeGroupedWithZeroPoint(decodeTensor(c.x), c.block_size, { ...opts, backend: "jax", out });
      expect(r.values.data, c.name).toBe(out);
      expectSame(r.values, c.values);
    }
    const x = { dtype: "float32" as const, shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) };
    expect(() => absMaxQuantizeGroupedWithZeroPoint(x, 2, { out: new Int8Array(3) })).toThrow(/output array is Int8Array\(3\), expected int8 × 4/);
  });
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

/** Plain row-major transpose: the reference for the last-axis path. */
function transposed<T extends Parameters<typeof bytesOf>[0], D extends string>(t: { dtype: D; shape: number[]; data: T }) {
  const [r, c] = t.shape as [number, number];
  const src = t.data as unknown as ArrayLike<number>;
  const out = new (t.data.constructor as new (n: number) => T)(t.data.length);
  const dst = out as unknown as { [i: number]: number };
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) dst[j * r + i] = src[i * c + j]!;
  return { ...t, shape: [c, r], data: out };
}

/** Seeded xorshift32 in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** Values with the awkward cases mixed in: zero rows, constant rows, subnormals, NaN, ±Inf, ±0. */
function awkward(rows: number, cols: number, rand: () => number, specials: boolean): Float32Array {
  const x = new Float32Array(rows * cols);
  const bits = new Uint32Array(x.buffer);
  for (let r = 0; r < rows; r++) {
    const kind = rand();
    const mag = 10 ** Math.floor(rand() * 8 - 4);
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      if (kind < 0.1) x[i] = 0;
      else if (kind < 0.15) x[i] = 0.375;
      else x[i] = (rand() * 2 - 1) * mag + (kind < 0.3 ? mag : 0);
      if (!specials) continue;
      const u = rand();
      if (u < 0.03) bits[i] = (Math.floor(rand() * 0x7fffff) + 1) | (rand() < 0.5 ? 0x80000000 : 0); // subnormal
      else if (u < 0.035) x[i] = NaN;
      else if (u < 0.04) x[i] = rand() < 0.5 ? Infinity : -Infinity;
      else if (u < 0.05) x[i] = rand() < 0.5 ? 0 : -0;
    }
  }
  return x;
}

describe("grouping along the last axis is Keras's axis-0 grouping of the transpose, transposed back", () => {
  const configs: { valueRange?: [number, number]; dtype?: QuantDType; epsilon?: number }[] = [
    {},
    { valueRange: [-8, 7], epsilon: 1e-7 },
    { valueRange: [-127, 127], dtype: "float32" },
    { valueRange: [0, 15], dtype: "uint8", epsilon: 0 },
    { valueRange: [-8, 7], dtype: "int16" },
  ];
  const shapes: [number, number, number][] = [
    [1, 1, 1], [1, 7, 3], [3, 5, 8], [5, 64, 64], [4, 65, 64], [9, 130, 128], [2, 300, 16], [7, 33, 32],
    [6, 100, 7], [3, 10, 1], [11, 255, 32], [2, 17, 2], [13, 48, 8], [1, 1000, 128], [70, 50, 50],
  ];

  function expectLastAxisMatches(x: Tensor<Float32Array>, block: number, opts: (typeof configs)[number]) {
    const direct = absMaxQuantizeGroupedWithZeroPoint(x, block, { ...opts, axis: 1, backend: "jax" });
    const ref = absMaxQuantizeGroupedWithZeroPoint(transposed(x), block, { ...opts, backend: "jax" });
    const want = { values: transposed(ref.values), scale: transposed(ref.scale), zeroPoint: transposed(ref.zeroPoint) };
    for (const k of ["values", "scale", "zeroPoint"] as const) {
      expect(direct[k].dtype).toBe(want[k].dtype);
      expect(direct[k].shape).toEqual(want[k].shape);
      expect(bytesOf(direct[k].data)).toEqual(bytesOf(want[k].data));
    }
  }

  for (const simdOn of [true, false]) {
    it(`random shapes and awkward values, byte for byte (SIMD ${simdOn ? "on" : "off"})`, () => {
      const was = useSimd(simdOn);
      try {
        const rand = rng(0xc0ffee);
        for (const [rows, cols, block] of shapes) {
          for (const opts of configs) {
            for (const specials of [false, true]) {
              const x: Tensor<Float32Array> = { dtype: "float32", shape: [rows, cols], data: awkward(rows, cols, rand, specials) };
              expectLastAxisMatches(x, block, opts);
              expectLastAxisMatches(x, cols + 3, opts); // block > dim: one group
            }
          }
        }
      } finally {
        useSimd(was);
      }
    });
  }

  for (const backend of ["jax", "torch"] as const) for (const c of loadGolden<GroupedCase>("grouped", backend).cases) {
    it(`golden ${c.name} (${backend}) through the last-axis path on the transposed input`, () => {
      const r = absMaxQuantizeGroupedWithZeroPoint(transposed(decodeTensor(c.x) as Tensor<Float32Array>), c.block_size, {
        ...intOptions<QuantDType>(c),
        axis: 1,
        backend,
      });
      expectSame(r.values, transposedGolden(c.values));
      expectSame(r.scale, transposedGolden(c.scale));
      expectSame(r.zeroPoint, transposedGolden(c.zero_point));
    });
  }
  it("rejects an axis other than 0 or 1", () => {
    const x = { dtype: "float32" as const, shape: [2, 2], data: new Float32Array(4) };
    expect(() => absMaxQuantizeGroupedWithZeroPoint(x, 2, { axis: 2 as 0 })).toThrow(/axis/);
  });
});

/** A golden tensor, transposed, re-encoded so expectSame can compare against it. */
function transposedGolden(g: GoldenTensor): GoldenTensor {
  const t = transposed(decodeTensor(g));
  return { ...g, shape: t.shape, b64: bytesOf(t.data).toString("base64") };
}
