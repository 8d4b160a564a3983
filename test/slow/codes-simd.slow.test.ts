/**
 * The SIMD code kernels of the --scheme and --mlx formats (wasm/codes-module.ts) against their
 * scalar twins, bit for bit: the kernels alone on values and scales chosen to hit ties,
 * subnormals, saturation and zero groups, then every llm-compressor preset and MLX affine
 * width / group through the library functions with SIMD on and off. The golden vectors
 * (test/quant/llmc/linear.test.ts, test/quant/mlx/affine.test.ts) run with SIMD on in npm test;
 * this file takes seconds, so it is in the slow suite.
 */
import { afterEach, describe, expect, it } from "vitest";
import { f32ToBf16Bits, f32ToF16Bits } from "../../src/quant/convert.js";
import { roundBf16, type LlmcDType } from "../../src/quant/llmc/arith.js";
import { fp4CodeOf } from "../../src/quant/llmc/fp4.js";
import { quantizeLlmcLinear } from "../../src/quant/llmc/linear.js";
import { LLMC_PRESETS } from "../../src/quant/llmc/presets.js";
import { fp8Code } from "../../src/quant/llmc/qparams.js";
import { mlxAffineQuantize, rint } from "../../src/quant/mlx/affine.js";
import { simdRunCodes, simdRunMinMax, type CodeSpec } from "../../src/quant/wasm/codes-kernels.js";
import { simdActive, useSimd } from "../../src/quant/wasm/kernels.js";
import { bytesOf } from "../support/golden.js";
import { rng } from "../support/rng.js";
import { sameOnAndOff } from "../support/simd.js";
import { roundTo } from "../support/llmc.js";

afterEach(() => {
  useSimd(true);
});


/**
 * Finite weights, row by row of `len`-runs: ordinary values over many octaves, subnormals of both
 * signs, ±0, all-zero runs, runs of exact halves of a power of two (ties once divided), huge and
 * tiny magnitudes (saturation and underflow), everything rounded to `dtype`.
 */
function weights(n: number, len: number, seed: number, dtype: LlmcDType): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  const bits = new Uint32Array(x.buffer);
  for (let start = 0; start < n; start += len) {
    const kind = Math.floor(r() * 6);
    const e = Math.floor(r() * 40) - 20;
    for (let i = start; i < start + len; i++) {
      const u = r();
      if (kind === 0) x[i] = 0;
      else if (kind === 1) x[i] = ((Math.floor(r() * 31) - 15) / 2) * 2 ** e; // halves: ties
      else if (kind === 2 && u < 0.3) bits[i] = ((r() * 0x007fffff) | 1) | (r() < 0.5 ? 0x80000000 : 0); // subnormal
      else if (u < 0.03) x[i] = r() < 0.5 ? -0 : 0;
      else if (u < 0.05) x[i] = (r() - 0.5) * 2 ** 120;
      else if (u < 0.07) x[i] = (r() - 0.5) * 2 ** -140;
      else x[i] = (r() - 0.5) * 2 ** (e + Math.floor(r() * 12) - 6);
    }
  }
  return roundTo(x, dtype);
}


/** Run scales: powers of two (ties), subnormal, odd mantissas, huge. */
function scales(runs: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: runs }, () => {
    const u = r();
    if (u < 0.3) return 2 ** (Math.floor(r() * 60) - 30);
    if (u < 0.4) return 2 ** -140 * (1 + Math.floor(r() * 100));
    if (u < 0.5) return 2 ** 100 * (1 + r());
    return Math.fround((0.5 + r()) * 2 ** (Math.floor(r() * 40) - 20));
  });
}

/** The scalar twin of one code (linear.ts's and affine.ts's loops). */
function scalarCode(spec: CodeSpec, x: number, s: number, z: number): number {
  const R = spec.round === "bf16" ? roundBf16 : Math.fround;
  if (spec.kind === "affine") {
    let q = rint(Math.fround(Math.fround(x - z) / s));
    if (q < 0) q = 0;
    if (spec.qmax < q) q = spec.qmax;
    return Number.isNaN(q) ? 0 : q;
  }
  const q = R(x / s);
  if (spec.kind === "fp8") return fp8Code(q < -448 ? -448 : q > 448 ? 448 : q);
  if (spec.kind === "fp4") return fp4CodeOf(q < -6 ? -6 : q > 6 ? 6 : q);
  let v = R(q + z);
  v = v < spec.qmin ? spec.qmin : v > spec.qmax ? spec.qmax : v;
  const c = v !== v ? 0 : v + 6755399441055744 - 6755399441055744;
  return (c + spec.offset) & 0xff;
}

describe("SIMD code kernels equal their scalar twins", () => {
  it("run on this engine", () => {
    expect(simdActive()).toBe(true);
  });

  const specs: CodeSpec[] = [];
  for (const round of ["f32", "bf16"] as const) {
    specs.push({ kind: "fp8", round, qmin: -448, qmax: 448, offset: 0 }, { kind: "fp4", round, qmin: -6, qmax: 6, offset: 0 });
    for (const bits of [2, 4, 8]) {
      for (const offset of [0, 1 << (bits - 1)]) specs.push({ kind: "int", round, qmin: -(2 ** (bits - 1)), qmax: 2 ** (bits - 1) - 1, offset });
    }
  }
  for (const bits of [2, 3, 4, 8]) specs.push({ kind: "affine", round: "f32", qmin: 0, qmax: 2 ** bits - 1, offset: 0 });

  for (const spec of specs) {
    for (const len of [16, 128, 4096]) {
      it(`${spec.kind} ${spec.round} [${spec.qmin}, ${spec.qmax}] +${spec.offset}, runs of ${len}`, () => {
        const n = len * Math.max(4, Math.ceil(200_000 / len));
        const x = weights(n, len, len * 7 + spec.qmax, spec.round === "bf16" ? "bfloat16" : "float32");
        const runs = n / len;
        const s = scales(runs, runs + spec.offset);
        const r = rng(spec.qmax + 5);
        const z = Float32Array.from({ length: runs }, () => (spec.kind === "int" ? Math.floor(r() * (spec.qmax - spec.qmin + 1)) + spec.qmin : (r() - 0.5) * 2 ** (Math.floor(r() * 20) - 10)));
        const zeros = spec.kind === "int" || spec.kind === "affine" ? z : null;
        const got = new Uint8Array(n);
        expect(simdRunCodes(spec, x, len, s, zeros, got)).toBe(true);
        const want = new Uint8Array(n);
        for (let i = 0; i < n; i++) want[i] = scalarCode(spec, x[i]!, s[Math.floor(i / len)]!, zeros ? zeros[Math.floor(i / len)]! : 0);
        let bad = -1;
        for (let i = 0; i < n && bad < 0; i++) if (got[i] !== want[i]) bad = i;
        expect(bad < 0 ? "equal" : `element ${bad}: x ${x[bad]} s ${s[Math.floor(bad / len)]} simd ${got[bad]} scalar ${want[bad]}`).toBe("equal");
      });
    }
  }

  it("per-run min / max equal the scalar loop's, and refuse runs with NaN or ±Inf", () => {
    const len = 32;
    const x = weights(len * 1000, len, 3, "float32");
    const mn = new Float32Array(1000);
    const mx = new Float32Array(1000);
    expect(simdRunMinMax(x, len, mn, mx)).toBe(true);
    for (let r = 0; r < 1000; r++) {
      const run = x.subarray(r * len, (r + 1) * len);
      expect([mn[r], mx[r]]).toEqual([run.reduce((a, b) => (b < a ? b : a), Infinity) || 0, run.reduce((a, b) => (b > a ? b : a), -Infinity) || 0]);
    }
    for (const bad of [NaN, Infinity, -Infinity]) {
      const y = x.slice();
      y[len * 500 + 7] = bad;
      expect(simdRunMinMax(y, len, mn, mx)).toBe(false);
    }
  });
});


describe("every llm-compressor preset: SIMD on and off write the same bytes", () => {
  const shapes: [number, number][] = [
    [132, 256],
    [16, 512],
    [3, 96 * 16],
  ];
  for (const preset of LLMC_PRESETS.filter((p) => p.refusal === null)) {
    for (const dtype of ["float32", "bfloat16", "float16"] as const) {
      it(`${preset.name} ${dtype}`, () => {
        for (const [rows, cols] of shapes) {
          const w = preset.weights!;
          const len = w.strategy === "channel" ? cols : w.strategy === "block" ? 128 : (w.groupSize ?? cols);
          if (cols % len !== 0) continue;
          const values = weights(rows * cols, len, rows + cols, dtype);
          sameOnAndOff(
            () => quantizeLlmcLinear({ dtype, rows, cols, values }, preset),
            (m) => [...m].map(([k, t]) => `${k} ${bytesOf(t.data).toString("hex")}`),
          );
        }
      });
    }
  }
});

describe("MLX affine: SIMD on and off write the same bytes", () => {
  for (const bits of [1, 2, 3, 4, 5, 6, 8]) {
    for (const groupSize of [32, 64, 128]) {
      it(`${bits} bits, group ${groupSize}`, () => {
        for (const dtype of ["float32", "bfloat16", "float16"] as const) {
          const rows = 37;
          const cols = groupSize * 6;
          const data = roundTo(weights(rows * cols, groupSize, bits * groupSize, "float32"), dtype);
          const withNaN = data.slice();
          withNaN[cols + 3] = NaN;
          withNaN[2 * cols + 5] = -Infinity;
          for (const x of [data, withNaN]) {
            const stored = dtype === "float32" ? x : new Uint16Array(x.length);
            if (dtype === "bfloat16") f32ToBf16Bits(x, stored as Uint16Array);
            if (dtype === "float16") f32ToF16Bits(x, stored as Uint16Array);
            sameOnAndOff(
              () => mlxAffineQuantize({ dtype, shape: [rows, cols], data: stored }, bits, groupSize),
              (q) => [bytesOf(q.wq).toString("hex"), bytesOf(q.scales.data).toString("hex"), bytesOf(q.biases.data).toString("hex")],
            );
          }
        }
      });
    }
  }
});
