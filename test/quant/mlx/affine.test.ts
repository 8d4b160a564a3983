import { describe, expect, it } from "vitest";
import { mlxAffineDequantize, mlxAffineQuantize, mlxAffineRefusal } from "../../../src/quant/mlx/affine.js";
import type { MlxFloat } from "../../../src/quant/mlx/floats.js";
import { reusedArrays } from "../../../src/quant/arrays.js";
import { mlxFpQuantize } from "../../../src/quant/mlx/fp.js";
import { bytesOfArray, loadMlxGolden, mlxData, type MlxGoldenTensor } from "../../support/mlx-golden.js";

interface AffineResult {
  bits: number;
  group_size: number;
  wq: MlxGoldenTensor;
  scales: MlxGoldenTensor;
  biases: MlxGoldenTensor;
  dequantized: MlxGoldenTensor;
}
interface AffineCase {
  dtype: MlxFloat;
  kind: "finite" | "non-finite";
  rows: string[];
  x: MlxGoldenTensor;
  results: AffineResult[];
}
interface AffineFile {
  cases: AffineCase[];
  refused: { bits: number; group_size: number; refused: string | null }[];
}

const golden = loadMlxGolden<AffineFile>("affine");

/** The first row (by its label) where two same-shaped arrays differ, for a readable failure. */
function firstDiff(a: ArrayBufferView, b: ArrayBufferView, rows: string[], perRow: number): string | null {
  const x = bytesOfArray(a);
  const y = bytesOfArray(b);
  if (x.length !== y.length) return `lengths ${x.length} vs ${y.length}`;
  const rowBytes = x.length / rows.length;
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) return `row "${rows[Math.floor(i / rowBytes)]}" byte ${i % rowBytes} of ${rowBytes} (${perRow} per row)`;
  }
  return null;
}

describe("mx.quantize / mx.dequantize, affine (MLX 0.32.4 CPU) bit for bit", () => {
  it("has the vectors of the pinned MLX, every dtype, width and group size", () => {
    expect(golden.mlx_version).toBe("0.32.4");
    expect(golden.cases.map((c) => c.dtype)).toEqual(["float32", "float32", "float16", "float16", "bfloat16", "bfloat16"]);
    for (const c of golden.cases) expect(c.results.length).toBe(21);
  });
  for (const c of golden.cases) {
    for (const r of c.results) {
      it(`${c.dtype} ${c.kind}: bits ${r.bits}, group ${r.group_size}`, () => {
        const x = { dtype: c.dtype, shape: c.x.shape, data: mlxData(c.x) as Float32Array | Uint16Array };
        const q = mlxAffineQuantize(x, r.bits, r.group_size);
        expect(q.wqShape).toEqual(r.wq.shape);
        expect(q.scales.shape).toEqual(r.scales.shape);
        expect(firstDiff(q.wq, mlxData(r.wq), c.rows, r.wq.shape[1]!)).toBeNull();
        expect(firstDiff(q.scales.data, mlxData(r.scales), c.rows, r.scales.shape[1]!)).toBeNull();
        expect(firstDiff(q.biases.data, mlxData(r.biases), c.rows, r.biases.shape[1]!)).toBeNull();
        // Read back what MLX wrote (not ours): equal to mx.dequantize.
        const scales = { dtype: c.dtype, shape: r.scales.shape, data: mlxData(r.scales) as Float32Array | Uint16Array };
        const biases = { dtype: c.dtype, shape: r.biases.shape, data: mlxData(r.biases) as Float32Array | Uint16Array };
        const d = mlxAffineDequantize(mlxData(r.wq) as Uint32Array, r.wq.shape, scales, biases, r.bits, r.group_size);
        expect(d.shape).toEqual(r.dequantized.shape);
        expect(firstDiff(d.data, mlxData(r.dequantized), c.rows, r.dequantized.shape[1]!)).toBeNull();
      });
    }
  }
  it("with arrays reused from call to call (a worker's, reusedArrays), every case in turn is still MLX's bytes", () => {
    // Widths, groups, dtypes and sizes change from call to call, so stale codes, scales or a
    // longer array from the call before would show.
    const arrays = reusedArrays();
    for (const c of golden.cases) {
      for (const r of [...c.results].reverse()) {
        const x = { dtype: c.dtype, shape: c.x.shape, data: mlxData(c.x) as Float32Array | Uint16Array };
        const q = mlxAffineQuantize(x, r.bits, r.group_size, arrays);
        const what = `${c.dtype} ${c.kind} bits ${r.bits} group ${r.group_size}`;
        expect(firstDiff(q.wq, mlxData(r.wq), c.rows, r.wq.shape[1]!), what).toBeNull();
        expect(firstDiff(q.scales.data, mlxData(r.scales), c.rows, r.scales.shape[1]!), what).toBeNull();
        expect(firstDiff(q.biases.data, mlxData(r.biases), c.rows, r.biases.shape[1]!), what).toBeNull();
      }
    }
  });
  it("refuses the widths and group sizes MLX refuses, in one line, and takes the others", () => {
    expect(golden.refused.length).toBeGreaterThan(5);
    for (const r of golden.refused) {
      const x = { dtype: "float32" as const, shape: [1, 256], data: new Float32Array(256).fill(1) };
      const ours = mlxAffineRefusal(r.bits, r.group_size);
      if (r.refused?.includes("divisible")) {
        // MLX checks the shape before the group size: 48 and 96 do not divide 256 (nor are they sizes it takes).
        expect(() => mlxAffineQuantize(x, r.bits, r.group_size)).toThrow(ours ?? /not a multiple of the group size/);
      } else if (r.refused === null) {
        expect(ours, `bits ${r.bits} group ${r.group_size}`).toBeNull();
        expect(mlxAffineQuantize(x, r.bits, r.group_size).wq.length).toBe((256 * r.bits) / 32);
      } else {
        expect(ours, `bits ${r.bits} group ${r.group_size}`).toMatch(/^MLX's affine [^\n]+$/);
        expect(() => mlxAffineQuantize(x, r.bits, r.group_size)).toThrow(ours!);
      }
    }
  });
});

interface StackedCase {
  dtype: MlxFloat;
  bits: number;
  group_size: number;
  x: MlxGoldenTensor;
  wq: MlxGoldenTensor;
  scales: MlxGoldenTensor;
  biases: MlxGoldenTensor;
}

describe("mx.quantize of stacked weights [experts, out, in] (mlx_lm's SwitchLinear)", () => {
  const stacked = loadMlxGolden<{ stacked: StackedCase[] }>("affine").stacked;
  it("has 3-D cases", () => expect(stacked.map((s) => s.x.shape.length)).toEqual([3, 3, 3]));
  for (const s of stacked) {
    it(`${s.dtype} bits ${s.bits} group ${s.group_size}: groups along the last axis, leading axes kept`, () => {
      const q = mlxAffineQuantize({ dtype: s.dtype, shape: s.x.shape, data: mlxData(s.x) as Float32Array | Uint16Array }, s.bits, s.group_size);
      expect(q.wqShape).toEqual(s.wq.shape);
      expect(q.scales.shape).toEqual(s.scales.shape);
      expect(bytesOfArray(q.wq).equals(bytesOfArray(mlxData(s.wq)))).toBe(true);
      expect(bytesOfArray(q.scales.data).equals(bytesOfArray(mlxData(s.scales)))).toBe(true);
      expect(bytesOfArray(q.biases.data).equals(bytesOfArray(mlxData(s.biases)))).toBe(true);
    });
  }
});

describe("what MLX cannot quantize is refused in one line", () => {
  const f32 = (shape: number[], n = shape.reduce((a, b) => a * b, 1)) => ({ dtype: "float32" as const, shape, data: new Float32Array(n) });
  it("fewer than 2 dimensions, a last dimension the group does not divide, data of another length", () => {
    expect(() => mlxAffineQuantize(f32([64]), 4, 64)).toThrow(/^mx.quantize needs at least 2 dimensions, this is \[64\]$/);
    expect(() => mlxAffineQuantize(f32([2, 96]), 4, 64)).toThrow(/^the last dimension 96 is not a multiple of the group size 64$/);
    expect(() => mlxAffineQuantize(f32([2, 64], 100), 4, 64)).toThrow(/^shape \[2, 64\] holds 128 values, the data 100$/);
    expect(() => mlxFpQuantize(f32([2, 48]), "mxfp4")).toThrow(/^the last dimension 48 is not a multiple of mxfp4's group size 32$/);
    expect(mlxFpQuantize(f32([2, 48]), "nvfp4").scalesShape).toEqual([2, 3]);
  });
});
