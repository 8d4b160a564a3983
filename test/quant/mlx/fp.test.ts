import { describe, expect, it } from "vitest";
import { MLX_FP_MODES, fp4Code, fp4CodeScan, mlxFpDequantize, mlxFpQuantize, mlxFpRefusal, type MlxFpMode } from "../../../src/quant/mlx/fp.js";
import { bf16Value, f16Value, f32Bits, f32FromBits, type MlxFloat } from "../../../src/quant/mlx/floats.js";
import { reusedArrays } from "../../../src/quant/arrays.js";
import { bytesOfArray, loadMlxGolden, mlxData, type MlxGoldenTensor } from "../../support/mlx-golden.js";

interface FpResult {
  mode: MlxFpMode;
  wq: MlxGoldenTensor;
  scales: MlxGoldenTensor;
  dequantized: Record<MlxFloat, MlxGoldenTensor>;
}
interface FpCase {
  dtype: MlxFloat;
  kind: "finite" | "non-finite";
  rows: string[];
  x: MlxGoldenTensor;
  results: FpResult[];
}
interface Sweep {
  mode: MlxFpMode;
  dtype: MlxFloat;
  first_bits: [number, number][];
  scales: MlxGoldenTensor;
  first_word: MlxGoldenTensor;
}
interface FpFile {
  cases: FpCase[];
  sweeps: Sweep[];
  refused: { mode: MlxFpMode; group_size: number; bits: number; refused: string | null }[];
  defaults: Record<string, { wq_shape: number[]; scales_shape: number[] }>;
}

const golden = loadMlxGolden<FpFile>("fp");

/** Where two arrays first differ, by row label, or null. */
function firstDiff(a: ArrayBufferView, b: ArrayBufferView, rows: readonly string[]): string | null {
  const x = bytesOfArray(a);
  const y = bytesOfArray(b);
  if (x.length !== y.length) return `lengths ${x.length} vs ${y.length}`;
  const per = x.length / rows.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return `row "${rows[Math.floor(i / per)]}" byte ${i % per} of ${per}: ${x[i]} vs ${y[i]}`;
  return null;
}

describe("mx.quantize / mx.dequantize, mxfp4 / mxfp8 / nvfp4 (MLX 0.32.4 CPU) bit for bit", () => {
  it("has the vectors of the pinned MLX", () => {
    expect(golden.mlx_version).toBe("0.32.4");
    expect(golden.cases.length).toBe(6);
    expect(golden.sweeps.length).toBe(9);
  });
  for (const c of golden.cases) {
    for (const r of c.results) {
      it(`${c.dtype} ${c.kind}: ${r.mode}`, () => {
        const x = { dtype: c.dtype, shape: c.x.shape, data: mlxData(c.x) as Float32Array | Uint16Array };
        const q = mlxFpQuantize(x, r.mode);
        expect(q.wqShape).toEqual(r.wq.shape);
        expect(q.scalesShape).toEqual(r.scales.shape);
        expect(firstDiff(q.scales, mlxData(r.scales), c.rows)).toBeNull();
        expect(firstDiff(q.wq, mlxData(r.wq), c.rows)).toBeNull();
        for (const dt of ["float32", "float16", "bfloat16"] as const) {
          const d = mlxFpDequantize(mlxData(r.wq) as Uint32Array, r.wq.shape, mlxData(r.scales) as Uint8Array, r.mode, dt);
          expect(d.shape).toEqual(r.dequantized[dt].shape);
          expect(firstDiff(d.data, mlxData(r.dequantized[dt]), c.rows), `dequantize to ${dt}`).toBeNull();
        }
      });
    }
  }
  it("with arrays reused from call to call (a worker's, reusedArrays), every case in turn is still MLX's bytes", () => {
    const arrays = reusedArrays();
    for (const c of [...golden.cases].reverse()) {
      for (const r of c.results) {
        const x = { dtype: c.dtype, shape: c.x.shape, data: mlxData(c.x) as Float32Array | Uint16Array };
        const q = mlxFpQuantize(x, r.mode, arrays);
        expect(firstDiff(q.scales, mlxData(r.scales), c.rows), `${c.dtype} ${c.kind} ${r.mode}`).toBeNull();
        expect(firstDiff(q.wq, mlxData(r.wq), c.rows), `${c.dtype} ${c.kind} ${r.mode}`).toBeNull();
      }
    }
  });
  for (const s of golden.sweeps) {
    it(`scale rule over ${s.dtype} group maxima: ${s.mode}`, () => {
      const firsts: number[] = [];
      for (const [start, count] of s.first_bits) for (let k = 0; k < count; k++) firsts.push(start + k);
      const n = firsts.length;
      const data = s.dtype === "float32" ? new Float32Array(n * 32) : new Uint16Array(n * 32);
      for (let i = 0; i < n; i++) data[i * 32] = s.dtype === "float32" ? f32FromBits(firsts[i]!) : firsts[i]!;
      const q = mlxFpQuantize({ dtype: s.dtype, shape: [n, 32], data }, s.mode);
      const { groupSize, bits } = MLX_FP_MODES[s.mode];
      const perGroup = 32 / groupSize;
      const wordsPerRow = bits;
      const scales = new Uint8Array(n);
      const first = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        scales[i] = q.scales[i * perGroup]!;
        first[i] = q.wq[i * wordsPerRow]!;
      }
      const labels = firsts.map((b) => `a = 0x${b.toString(16)}`);
      expect(firstDiff(scales, mlxData(s.scales), labels)).toBeNull();
      expect(firstDiff(first, mlxData(s.first_word), labels)).toBeNull();
    });
  }
  it("refuses what MLX refuses, each mode's rule in one line", () => {
    for (const r of golden.refused) {
      const ours = mlxFpRefusal(r.mode, r.bits, r.group_size);
      expect(ours === null, `${r.mode} bits ${r.bits} group ${r.group_size}`).toBe(r.refused === null);
      if (ours) expect(ours).not.toContain("\n");
    }
  });
  it("MLX's defaults are each mode's one group size and width", () => {
    for (const [mode, { groupSize, bits }] of Object.entries(MLX_FP_MODES)) {
      const d = golden.defaults[mode]!;
      expect(d.scales_shape).toEqual([1, 256 / groupSize]);
      expect(d.wq_shape).toEqual([1, (256 * bits) / 32]);
    }
  });
});

describe("fp4Code's two-neighbour search equals the full 16-entry argmin MLX runs", () => {
  for (const dt of ["float16", "bfloat16"] as const) {
    it(`on every ${dt} value, as each dtype's and as float32 distances`, () => {
      const of = dt === "float16" ? f16Value : bf16Value;
      let checked = 0;
      for (let h = 0; h < 65536; h++) {
        const v = of(h);
        for (const diff of [dt, "float32"] as const) {
          if (fp4Code(v, diff) !== fp4CodeScan(v, diff)) throw new Error(`${dt} 0x${h.toString(16)} (${v}) in ${diff}: ${fp4Code(v, diff)} vs ${fp4CodeScan(v, diff)}`);
        }
        checked++;
      }
      expect(checked).toBe(65536);
    });
  }
  it("on float32 values around every tie and at random", () => {
    const values: number[] = [];
    for (const g of [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8]) {
      let x = Math.fround(g);
      for (let k = 0; k < 8; k++) x = f32FromBits(f32Bits(x) + 1);
      for (let k = 0; k < 16; k++, x = f32FromBits(f32Bits(x) - 1)) values.push(x, -x);
    }
    let seed = 12345;
    for (let i = 0; i < 20000; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      values.push(Math.fround((seed / 2 ** 32) * 20 - 10));
    }
    for (const v of values) expect(fp4Code(v, "float32"), `${v}`).toBe(fp4CodeScan(v, "float32"));
  });
});
