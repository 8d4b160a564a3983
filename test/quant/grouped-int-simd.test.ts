/**
 * The SIMD pass of compressed-tensors' int presets and FP8 per channel / group
 * (wasm/microscale-module.ts llmc_sym / llmc_asym scales, driven by microscale-kernels.ts
 * simdGroupedInt) against their scalar twins, byte for byte: each group's scale and zero point
 * against qparams.ts groupQParams on groups built around chosen min / max pairs (zeros of both
 * signs, subnormals whose range underflows the scale to zero, ranges that overflow T, one-sided
 * groups, huge and tiny magnitudes), then every int and FP8 preset through quantizeLlmcLinear with
 * SIMD on and off, from float32 values and from 16-bit bit patterns; the codes and scales made in
 * reused arrays that are not zeroed (quantizeLlmcLinear's `arrays`, as a worker's blocks pass); and the
 * refusal of non-finite weights that rests on the SIMD paths declining them (llmcLinearUnlessNonFinite).
 */
import { describe, expect, it } from "vitest";
import type { LlmcDType } from "../../src/quant/llmc/arith.js";
import { llmcLinearUnlessNonFinite, quantizeLlmcLinear } from "../../src/quant/llmc/linear.js";
import { LLMC_PRESETS, type LlmcArgs } from "../../src/quant/llmc/presets.js";
import { groupQParams, quantRange } from "../../src/quant/llmc/qparams.js";
import { reusedArrays, type Arrays } from "../../src/quant/arrays.js";
import { simdActive } from "../../src/quant/wasm/kernels.js";
import { simdGroupedInt, type GroupedSpec } from "../../src/quant/wasm/microscale-kernels.js";
import { bytesOf } from "../support/golden.js";
import { roundTo, sixteenBit } from "../support/llmc.js";
import { rng } from "../support/rng.js";
import { sameOnAndOff, scalar } from "../support/simd.js";

const ROUND = { float32: "f32", bfloat16: "bf16", float16: "f16" } as const;

const hexOf = (m: Map<string, { data: ArrayBufferView }>) => [...m].map(([k, t]) => `${k} ${bytesOf(t.data as Uint8Array).toString("hex")}`);

/** Magnitudes a group's min or max is drawn from: zero, subnormals (float32's and float16's), tiny and ordinary normals, T's largest. */
function magnitudes(dtype: LlmcDType): number[] {
  const big = dtype === "float16" ? [65504, 60000, 32768] : [3.3e38, 2 ** 127, 1e30];
  const sub = dtype === "float16" ? [2 ** -24, 3 * 2 ** -24, 2 ** -15] : [2 ** -149, 3 * 2 ** -149, 2 ** -130];
  return [0, ...sub, 2 ** -126, 1e-20, 2 ** -14, 0.001, 0.0078125, 0.3, 1, 1.5, 7.5, 100, 448, ...big];
}

/** `groups` groups of `len`: a min and a max picked from `magnitudes` (either sign, or equal), values between them, and -0 / +0 here and there. */
function groupsAround(groups: number, len: number, seed: number, dtype: LlmcDType): Float32Array {
  const r = rng(seed);
  const m = magnitudes(dtype);
  const x = new Float32Array(groups * len);
  for (let g = 0; g < groups; g++) {
    let a = (r() < 0.5 ? -1 : 1) * m[Math.floor(r() * m.length)]!;
    let b = r() < 0.15 ? a : (r() < 0.5 ? -1 : 1) * m[Math.floor(r() * m.length)]!;
    if (a > b) [a, b] = [b, a];
    for (let i = 0; i < len; i++) {
      const t = r();
      // a zero of either sign only where the range holds it; between a and b in double, so the float32 stays within
      x[g * len + i] = i === 0 ? a : i === 1 ? b : a <= 0 && b >= 0 && t < 0.1 ? (t < 0.05 ? -0 : 0) : a * (1 - t) + b * t;
    }
  }
  return roundTo(x, dtype);
}

/** The int args of `bits`, symmetric or not, groups of 16; and FP8's. */
const int = (bits: number, symmetric: boolean): LlmcArgs => ({ numBits: bits, type: "int", symmetric, strategy: "group", groupSize: 16, blockStructure: null, dynamic: false, scaleDtype: null, observer: null });
const FP8: LlmcArgs = { ...int(8, true), type: "float" };

describe("the int presets' and FP8's SIMD scales and zero points equal groupQParams", () => {
  it("run on this engine", () => {
    expect(simdActive()).toBe(true);
  });

  const argsList = [FP8, ...[2, 3, 4, 5, 6, 7, 8].flatMap((b) => [int(b, true), int(b, false)])];
  for (const dtype of ["float32", "bfloat16", "float16"] as const) {
    it(`${dtype}: every bit width, symmetric and not, and FP8`, () => {
      const len = 16;
      const groups = 4000;
      const values = groupsAround(groups, len, dtype.length * 7 + 1, dtype);
      for (const a of argsList) {
        const [qmin, qmax] = quantRange(a);
        const spec: GroupedSpec = { scales: a.symmetric ? "llmc_sym" : "llmc_asym", codes: a.type === "int" ? "int" : "fp8", round: ROUND[dtype], param: a.symmetric ? (qmax - qmin) / 2 : qmax - qmin, qmin, qmax, offset: 0 };
        const scales = new Float32Array(groups);
        const zeros = new Int8Array(groups);
        expect(simdGroupedInt(spec, values, len, false, new Uint8Array(values.length), scales, a.symmetric ? null : zeros)).toBe(true);
        const want = new Float64Array(groups);
        const wantZeros = new Int8Array(groups);
        for (let g = 0; g < groups; g++) {
          const run = values.subarray(g * len, (g + 1) * len);
          const mn = run.reduce((p, v) => (v < p ? v : p), Infinity);
          const mx = run.reduce((p, v) => (v > p ? v : p), -Infinity);
          groupQParams(mn, mx, a, dtype, undefined, want, wantZeros, g);
        }
        const label = `${a.type}${a.numBits}${a.symmetric ? "" : " asym"}`;
        expect([label, [...scales]]).toEqual([label, [...Float32Array.from(want)]]);
        expect([label, [...zeros]]).toEqual([label, [...wantZeros]]);
      }
    });
  }
});

describe("every int and FP8 preset per channel or group: SIMD on and off write the same bytes", () => {
  const presets = LLMC_PRESETS.filter((p) => p.refusal === null && p.weights !== null && (p.weights.strategy === "group" || p.weights.strategy === "channel") && p.weights.scaleDtype === null);
  it("cover the int presets, W4A16_ASYM and FP8_DYNAMIC", () => {
    expect(presets.map((p) => p.name)).toEqual(expect.arrayContaining(["W4A16", "W4A16_ASYM", "W8A16", "W3A16", "W8A8", "FP8_DYNAMIC"]));
  });
  for (const preset of presets) {
    for (const dtype of ["float32", "bfloat16", "float16"] as const) {
      it(`${preset.name} ${dtype}`, () => {
        for (const [rows, cols] of [[40, 384], [9, 1152], [3, 2048]] as [number, number][]) {
          const len = preset.weights!.strategy === "channel" ? cols : preset.weights!.groupSize!;
          const values = groupsAround((rows * cols) / 16, 16, rows + cols + dtype.length, dtype);
          const w = { dtype, rows, cols, values };
          expect(cols % len).toBe(0);
          sameOnAndOff(() => quantizeLlmcLinear(w, preset), hexOf);
          sameOnAndOff(() => quantizeLlmcLinear(sixteenBit(w), preset), hexOf);
        }
      });
    }
  }
});

describe("arrays: the SIMD paths make their codes and scales in the arrays given", () => {
  for (const name of ["W4A16", "W4A16_ASYM", "W8A16", "W4A8", "FP8_DYNAMIC", "NVFP4A16", "MXFP4A16", "MXFP8A16"]) {
    it(`${name}: reused arrays left full of another block's bytes give the bytes of fresh ones, block after block`, () => {
      const preset = LLMC_PRESETS.find((p) => p.name === name)!;
      const arrays = reusedArrays();
      // Every role the kernels ask for, handed out first full of 0xA5 (a stale block's bytes, not zeroed).
      const dirty: Arrays = (role, of, n) => {
        const a = arrays(role, of, n);
        new Uint8Array(a.buffer, a.byteOffset, a.byteLength).fill(0xa5);
        return a;
      };
      for (const [rows, cols, seed] of [[8, 256, 5], [4, 128, 6], [8, 256, 7]] as const) {
        const w = { dtype: "bfloat16" as const, rows, cols, values: groupsAround((rows * cols) / 16, 16, seed, "bfloat16") };
        expect(hexOf(quantizeLlmcLinear(w, preset, 1, dirty))).toEqual(hexOf(quantizeLlmcLinear(w, preset, 1)));
      }
    });
  }
});

describe("llmcLinearUnlessNonFinite: null for a weight holding NaN or ±Inf, wherever it lies, SIMD on and off", () => {
  for (const name of ["W4A16", "W4A16_ASYM", "FP8_DYNAMIC", "FP8_BLOCK", "MXFP4A16", "MXFP8A16"]) {
    for (const dtype of ["float32", "bfloat16", "float16"] as const) {
      it(`${name} ${dtype}`, () => {
        const [rows, cols] = [128, 256];
        const preset = LLMC_PRESETS.find((p) => p.name === name)!;
        const finite = { dtype, rows, cols, values: groupsAround((rows * cols) / 16, 16, 9, dtype) };
        sameOnAndOff(() => [llmcLinearUnlessNonFinite(sixteenBit(finite), preset)], (m) => [m[0] === null ? "null" : hexOf(m[0]).join()]);
        expect(llmcLinearUnlessNonFinite(sixteenBit(finite), preset)).not.toBeNull();
        for (const [bad, at] of [[NaN, 0], [Infinity, rows * cols - 1], [-Infinity, 1000]] as const) {
          const values = finite.values.slice();
          values[at] = bad;
          const w = sixteenBit({ ...finite, values });
          expect(llmcLinearUnlessNonFinite(w, preset)).toBeNull();
          expect(scalar(() => llmcLinearUnlessNonFinite(w, preset))).toBeNull();
        }
      });
    }
  }
});
