/**
 * The microscaling SIMD kernels (wasm/microscale-module.ts's scales, codes-module.ts's MLX fp4
 * codes, driven by wasm/microscale-kernels.ts) against their scalar twins, the TypeScript loops of
 * quant/llmc/linear.ts and quant/mlx/fp.ts, byte for byte: compressed-tensors NVFP4 / MXFP4 /
 * MXFP8 and MLX nvfp4 / mxfp4 / mxfp8, float32 and bfloat16 (float16 stays scalar), on groups
 * built to hit exact ties between fp4 and e4m3 codes at the group's own scale, zeros and all-zero
 * groups, -0, subnormals, saturation and the largest and smallest magnitudes. Groups with NaN or
 * ±Inf send the whole weight to the scalar loops, which the same comparison covers.
 */
import { describe, expect, it } from "vitest";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../src/quant/convert.js";
import { quantizeLlmcLinear } from "../../src/quant/llmc/linear.js";
import { llmcPreset } from "../../src/quant/llmc/presets.js";
import { mlxAffineQuantize } from "../../src/quant/mlx/affine.js";
import { MLX_FP_MODES, mlxFpQuantize, type MlxFpMode } from "../../src/quant/mlx/fp.js";
import { simdAffine, simdMicroscale, type MicroscaleSpec } from "../../src/quant/wasm/microscale-kernels.js";
import { simdActive } from "../../src/quant/wasm/kernels.js";
import { bytesOf } from "../support/golden.js";
import { rng } from "../support/rng.js";
import { sameOnAndOff } from "../support/simd.js";

const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
const FP4_MIDPOINTS = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5];
/** e4m3 values and the midpoints between neighbours (5 significant bits): fp8 ties. */
const E4M3_TIES = Array.from({ length: 16 * 15 }, (_, i) => (16 + (i % 16)) * 2 ** (Math.floor(i / 16) - 13)).filter((v) => v <= 464);

/**
 * `groups` groups of `len` float32 values, each of one kind: ties (values t · b for fp4 values,
 * their midpoints and e4m3 ties t, with an anchor making the group's amax 4 b, 6 b, 256 b or
 * 448 b, b a power of two or an e4m3 value, so the scale is b or a power of two near it), ordinary
 * values, all zeros of both signs, subnormals, huge (up to float32's max), tiny normals, one huge
 * value among tiny ones, values around float16's subnormals, and (with `specials`) a NaN or ±Inf.
 */
function microWeights(groups: number, len: number, seed: number, specials = false): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(groups * len);
  const bits = new Uint32Array(x.buffer);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const sign = () => (r() < 0.5 ? -1 : 1);
  for (let g = 0; g < groups; g++) {
    const at = g * len;
    const kind = Math.floor(r() * (specials ? 10 : 9));
    const e = Math.floor(r() * 60) - 30;
    const base = r() < 0.5 ? 2 ** e : (8 + Math.floor(r() * 8)) * 2 ** (e - 3);
    for (let i = at; i < at + len; i++) {
      if (kind <= 1) x[i] = sign() * pick(r() < 0.5 ? FP4_MIDPOINTS : r() < 0.5 ? FP4 : E4M3_TIES.slice(0, 120)) * base;
      else if (kind === 2) x[i] = (r() - 0.5) * 2 ** (e + Math.floor(r() * 8) - 4);
      else if (kind === 3) x[i] = r() < 0.5 ? -0 : 0;
      else if (kind === 4) bits[i] = (r() * 0x007fffff) | (r() < 0.5 ? 0x80000000 : 0);
      else if (kind === 5) x[i] = sign() * (1 + 0.99 * r()) * 2 ** (127 - Math.floor(r() * 4)); // under bfloat16's overflow too
      else if (kind === 6) x[i] = sign() * (1 + r()) * 2 ** (-126 + Math.floor(r() * 4));
      else if (kind === 7) x[i] = sign() * (r() < 0.1 ? 2 ** (e + 40) : r() * 2 ** (e - 40));
      else if (kind === 8) x[i] = sign() * r() * 2 ** (-10 - Math.floor(r() * 16)); // scales in and around float16's subnormals
      else x[i] = (r() - 0.5) * 2 ** e;
    }
    if (kind <= 1) x[at + Math.floor(r() * len)] = sign() * pick([4, 6, 256, 448]) * base;
    if (kind === 8) {
      // an absmax a float16 ulp or three above 6 · 2^-15 or 448 · 2^-15 (or half that): its scale lands just past a power of two below 2^-14
      const a0 = pick([6, 448]) * 2 ** (-15 - Math.floor(r() * 2));
      x[at + Math.floor(r() * len)] = sign() * (a0 + 2 ** (Math.floor(Math.log2(a0)) - 10) * (1 + Math.floor(r() * 3)));
    }
    if (kind === 9) x[at + Math.floor(r() * len)] = pick([NaN, Infinity, -Infinity]);
  }
  return x;
}

/** x rounded to `dtype`: its bit patterns (16-bit dtypes) and its float32 values; float16 saturates at ±65504, not to ±Inf. */
function rounded(x: Float32Array, dtype: Dtype): { bits: Uint16Array; values: Float32Array } {
  const bits = new Uint16Array(x.length);
  if (dtype === "float32") return { bits, values: x };
  const values = new Float32Array(x.length);
  if (dtype === "bfloat16") {
    f32ToBf16Bits(x, bits);
    bf16BitsToF32(bits, values);
  } else {
    f32ToF16Bits(x.map((v) => Math.max(-65504, Math.min(65504, v))), bits);
    f16BitsToF32(bits, values);
  }
  return { bits, values };
}

type Dtype = "float32" | "bfloat16" | "float16";
const ROUND = { float32: "f32", bfloat16: "bf16", float16: "f16" } as const;

const hex = (m: Map<string, { data: ArrayBufferView }>) => [...m].map(([k, t]) => `${k} ${bytesOf(t.data as Uint8Array).toString("hex")}`);

describe("microscaling SIMD kernels equal their scalar twins", () => {
  it("run on this engine", () => {
    expect(simdActive()).toBe(true);
  });

  const presets = [
    ["NVFP4A16", 16, { scales: "llmc_nv", codes: "fp4" }],
    ["MXFP4A16", 32, { scales: "llmc_mx", codes: "fp4" }],
    ["MXFP8A16", 32, { scales: "llmc_mx", codes: "fp8" }],
  ] as const;
  for (const [name, len, kinds] of presets) {
    for (const dtype of ["float32", "bfloat16", "float16"] as const) {
      it(`llm-compressor ${name} ${dtype}: ties, zeros, subnormals, saturation`, () => {
        const rows = 48;
        const cols = len * 24;
        const raw = microWeights((rows * cols) / len, len, len * 31 + rows + dtype.length);
        const values = rounded(raw, dtype).values;
        const preset = llmcPreset(name);
        // The kernel takes these groups (none holds NaN or ±Inf), so the comparison below is SIMD against scalar
        // (MX in float16 has no kernel: its scalar loops run both times).
        const round = ROUND[dtype];
        const spec: MicroscaleSpec = { ...kinds, round, codesRound: kinds.scales === "llmc_nv" ? "f32" : round, param: kinds.scales === "llmc_nv" ? 1 : kinds.codes === "fp4" ? 2 : 8 };
        if (kinds.scales === "llmc_nv" || dtype !== "float16") {
          expect(simdMicroscale(spec, values, len, new Uint8Array(kinds.codes === "fp4" ? values.length / 2 : values.length), new Uint8Array(values.length / len))).toBe(true);
        }
        const w = { dtype, rows, cols, values };
        sameOnAndOff(() => quantizeLlmcLinear(w, preset), hex);
        if (name === "NVFP4A16") {
          // global scales that make the divisors e4m3 values (ties exact), scale the FP8 code past 448 or under its subnormals
          for (const gs of [1, 2 ** 10, 2 ** -12, 3.5, 2688]) sameOnAndOff(() => quantizeLlmcLinear(w, preset, gs), hex);
        }
      });
    }
    it(`llm-compressor ${name}: a NaN or ±Inf sends the weight to the scalar loops, with the same bytes`, () => {
      const values = microWeights(64, len, len + 3, true);
      sameOnAndOff(() => quantizeLlmcLinear({ dtype: "float32", rows: 8, cols: 8 * len, values }, llmcPreset(name), name === "NVFP4A16" ? 1 : undefined), hex);
    });
  }

  for (const mode of ["nvfp4", "mxfp4", "mxfp8"] as MlxFpMode[]) {
    const len = MLX_FP_MODES[mode].groupSize;
    for (const dtype of ["float32", "bfloat16", "float16"] as const) {
      it(`MLX ${mode} ${dtype}: ties, zeros, subnormals, saturation`, () => {
        const rows = 48;
        const cols = len * 24;
        const raw = microWeights((rows * cols) / len, len, len * 17 + rows + dtype.length);
        const data = dtype === "float32" ? raw : rounded(raw, dtype).bits;
        const round = ROUND[dtype];
        const spec: MicroscaleSpec =
          mode === "nvfp4"
            ? { scales: "mlx_nv", codes: round === "f32" ? "mlxfp4" : "mlxnvfp4", round, codesRound: round, param: 0 }
            : { scales: "mlx_mx", codes: mode === "mxfp4" ? "mlxfp4" : "fp8", round, codesRound: round, param: mode === "mxfp4" ? 6 : 448 };
        const src = dtype === "float32" ? raw : { bits: data as Uint16Array, kind: dtype };
        const bytes = mode === "mxfp8" ? raw.length : raw.length / 2;
        expect(simdMicroscale(spec, src, len, new Uint8Array(bytes), new Uint8Array(raw.length / len))).toBe(true);
        sameOnAndOff(
          () => mlxFpQuantize({ dtype, shape: [rows, cols], data }, mode),
          (q) => [bytesOf(q.wq).toString("hex"), bytesOf(q.scales).toString("hex")],
        );
      });
    }
    it(`MLX ${mode}: a NaN or ±Inf sends the weight to the scalar loops, with the same bytes`, () => {
      const data = microWeights(64, len, len + 9, true);
      sameOnAndOff(
        () => mlxFpQuantize({ dtype: "float32", shape: [8, 8 * len], data }, mode),
        (q) => [bytesOf(q.wq).toString("hex"), bytesOf(q.scales).toString("hex")],
      );
    });
  }


  for (const bits of [1, 2, 3, 4, 5, 6, 8]) {
    it(`MLX affine ${bits} bits: ties, zeros, subnormals, huge values; float32, bfloat16, float16`, () => {
      const len = bits === 3 ? 128 : bits === 5 ? 64 : 32;
      const rows = 24;
      const cols = len * 8;
      const raw = microWeights((rows * cols) / len, len, bits * 101);
      expect(simdAffine(raw, len, bits, bits === 4, new Uint8Array(bits === 4 ? raw.length / 2 : raw.length), new Float32Array(raw.length / len), new Float32Array(raw.length / len))).toBe(true);
      const h = new Uint16Array(raw.length);
      f32ToF16Bits(raw, h);
      for (const [dtype, data] of [["float32", raw], ["bfloat16", rounded(raw, "bfloat16").bits], ["float16", h]] as const) {
        sameOnAndOff(
          () => mlxAffineQuantize({ dtype, shape: [rows, cols], data }, bits, len),
          (q) => [bytesOf(q.wq).toString("hex"), bytesOf(q.scales.data).toString("hex"), bytesOf(q.biases.data).toString("hex")],
        );
      }
    });
  }});
