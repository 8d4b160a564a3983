import { describe, expect, it } from "vitest";
import { quantizeDenseKernel, type DenseQuantVariables } from "../../src/quant/dense.js";
import { toFloat32 } from "../../src/quant/convert.js";
import { KquantError } from "../../src/errors.js";
import { bytesOf, decodeTensor, type GoldenTensor } from "../support/golden.js";
import { readFileSync } from "node:fs";

interface DenseCase {
  name: string;
  kernel: number;
  mode: "int8" | "int4";
  /** "default": layer.quantize(mode) without a config; else Int4QuantizationConfig(block_size). */
  block_size: "default" | number | null;
  stored: Record<string, GoldenTensor>;
  order: string[];
}

interface DenseVectors {
  keras_version: string;
  backends: string[];
  kernels: GoldenTensor[];
  cases: DenseCase[];
}

const vectors = JSON.parse(
  readFileSync(new URL("../../fixtures/keras/vectors/dense.json", import.meta.url), "utf8"),
) as DenseVectors;

function kernelOf(c: DenseCase): { data: Float32Array; shape: [number, number] } {
  const t = decodeTensor(vectors.kernels[c.kernel]!);
  // A 16-bit kernel: a float32 layer casts it to float32 on assignment, exactly as toFloat32 does.
  const f = t.dtype === "float32" ? t : toFloat32(t);
  return { data: f.data as Float32Array, shape: t.shape as [number, number] };
}

function quantize(c: DenseCase): DenseQuantVariables {
  const { data, shape } = kernelOf(c);
  if (c.mode === "int8") return quantizeDenseKernel(data, shape, { mode: "int8" });
  return quantizeDenseKernel(data, shape, c.block_size === "default" ? { mode: "int4" } : { mode: "int4", blockSize: c.block_size });
}

describe("quantizeDenseKernel stores what Keras 3.15.1's Dense.quantize stores, byte for byte", () => {
  it("has vectors of the pinned Keras, identical on all four backends", () => {
    expect(vectors.keras_version).toBe("3.15.1");
    expect(vectors.backends).toEqual(["jax", "numpy", "tensorflow", "torch"]);
    expect(vectors.cases.length).toBeGreaterThan(100);
  });
  for (const c of vectors.cases) {
    it(`${c.name}: ${c.mode} block ${String(c.block_size)}`, () => {
      const got = quantize(c);
      expect(Object.keys(got)).toEqual(c.order);
      for (const name of c.order) {
        const want = decodeTensor(c.stored[name]!);
        const have = got[name as keyof DenseQuantVariables]!;
        expect([name, have.dtype, have.shape]).toEqual([name, want.dtype, want.shape]);
        expect(bytesOf(have.data).equals(bytesOf(want.data)), `${name} bytes`).toBe(true);
      }
    });
  }
});

describe("quantizeDenseKernel arguments", () => {
  const k = new Float32Array([1, -2, 3, 0.5, 4, -1]);
  it("plain int4 means Keras's default block size 128 (grouped, with zero and g_idx)", () => {
    const v = quantizeDenseKernel(k, [2, 3], { mode: "int4" });
    expect(Object.keys(v)).toEqual(["kernel", "kernel_scale", "kernel_zero", "g_idx"]);
    expect(v.kernel_scale.shape).toEqual([1, 3]);
    expect(v.kernel.shape).toEqual([2, 2]);
    expect(quantizeDenseKernel(k, [2, 3], { mode: "int4", blockSize: 128 })).toEqual(v);
  });
  it("int4 with block size null or -1 is per channel", () => {
    const a = quantizeDenseKernel(k, [2, 3], { mode: "int4", blockSize: null });
    expect(Object.keys(a)).toEqual(["kernel", "kernel_scale"]);
    expect(a.kernel_scale.shape).toEqual([3]);
    expect(quantizeDenseKernel(k, [2, 3], { mode: "int4", blockSize: -1 })).toEqual(a);
  });
  it("refuses bad shapes, block sizes and modes with a KquantError", () => {
    expect(() => quantizeDenseKernel(k, [4, 2], { mode: "int8" })).toThrow(KquantError);
    expect(() => quantizeDenseKernel(k, [0, 6] as [number, number], { mode: "int8" })).toThrow(KquantError);
    expect(() => quantizeDenseKernel(k, [2, 3], { mode: "int8", blockSize: 32 })).toThrow(/int8 takes no block size/);
    expect(() => quantizeDenseKernel(k, [2, 3], { mode: "int4", blockSize: 0 })).toThrow(/positive integer/);
    expect(() => quantizeDenseKernel(k, [2, 3], { mode: "int4", blockSize: 2.5 })).toThrow(KquantError);
    expect(() => quantizeDenseKernel(k, [2, 3], { mode: "float8" as "int8" })).toThrow(/int8 or int4/);
  });
});
