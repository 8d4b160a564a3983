/**
 * The microscaling SIMD kernels against their scalar twins over whole ranges (the fast test,
 * test/quant/microscale-simd.test.ts, samples them): MLX's fp4 codes of every bfloat16 pattern
 * divided by scales that make ties, large quotients (the scan past 8) and ±Inf / NaN quotients;
 * and every finite bfloat16 magnitude as a group's absmax, through compressed-tensors NVFP4 /
 * MXFP4 / MXFP8 and MLX nvfp4 / mxfp4 / mxfp8 with SIMD on and off. Takes seconds: slow suite.
 */
import { describe, expect, it } from "vitest";
import { quantizeLlmcLinear } from "../../src/quant/llmc/linear.js";
import { llmcPreset } from "../../src/quant/llmc/presets.js";
import { bf16Value, rounderOf, type MlxFloat } from "../../src/quant/mlx/floats.js";
import { fp4Code, mlxFpQuantize, type MlxFpMode } from "../../src/quant/mlx/fp.js";
import { simdRunCodes } from "../../src/quant/wasm/codes-kernels.js";
import { simdMicroscale } from "../../src/quant/wasm/microscale-kernels.js";
import { bytesOf } from "../support/golden.js";
import { rng } from "../support/rng.js";
import { sameOnAndOff } from "../support/simd.js";

describe("MLX fp4 codes: SIMD equals fp4Code on every bfloat16 pattern", () => {
  const x = Float32Array.from({ length: 65536 }, (_, h) => bf16Value(h));
  for (const [kind, round, diff] of [
    ["mlxfp4", "f32", "float32"],
    ["mlxfp4", "bf16", "bfloat16"],
    ["mlxnvfp4", "bf16", "float32"],
  ] as const) {
    it(`${kind} ${round}`, () => {
      const R = rounderOf(round === "bf16" ? "bfloat16" : "float32");
      for (const s of [1, 0.375, 2 ** -3, 2 ** 20, 2 ** -140, 0]) {
        const got = new Uint8Array(x.length);
        expect(simdRunCodes({ kind, round, qmin: 0, qmax: 0, offset: 0 }, x, 16, new Float32Array(x.length / 16).fill(s), null, got)).toBe(true);
        let bad = -1;
        for (let i = 0; i < x.length && bad < 0; i++) if (got[i] !== fp4Code(R(x[i]! / s), diff as MlxFloat)) bad = i;
        expect(bad < 0 ? "equal" : `pattern ${bad.toString(16)} / ${s}: simd ${got[bad]} scalar ${fp4Code(R(x[bad]! / s), diff as MlxFloat)}`).toBe("equal");
      }
    });
  }
});

/** Groups of `len` whose absmax runs over every finite bfloat16 magnitude (either sign), the rest fractions of it. */
function everyAbsMax(len: number): Float32Array {
  const r = rng(len);
  const mags = Array.from({ length: 0x7f80 }, (_, h) => bf16Value(h));
  const x = new Float32Array(mags.length * len);
  mags.forEach((m, g) => {
    for (let j = 0; j < len; j++) x[g * len + j] = (r() - 0.5) * 2 * m;
    x[g * len + Math.floor(r() * len)] = r() < 0.5 ? -m : m;
  });
  return x;
}

function toBf16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer.slice(0));
  return Uint16Array.from(u, (b) => ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff);
}


describe("every finite bfloat16 absmax: SIMD on and off write the same bytes", () => {
  for (const [name, len] of [["NVFP4A16", 16], ["MXFP4A16", 32], ["MXFP8A16", 32]] as const) {
    it(`llm-compressor ${name}`, () => {
      const x = everyAbsMax(len);
      const bits = toBf16(x);
      const values = Float32Array.from(bits, (h) => bf16Value(h));
      const rows = values.length / (len * 16);
      // no group holds ±Inf or NaN: the SIMD path runs
      const spec = { scales: name === "NVFP4A16" ? "llmc_nv" : "llmc_mx", codes: name === "MXFP8A16" ? "fp8" : "fp4", round: "bf16", codesRound: "bf16", param: name === "NVFP4A16" ? 1 : name === "MXFP4A16" ? 2 : 8 } as const;
      expect(simdMicroscale(spec, values, len, new Uint8Array(name === "MXFP8A16" ? values.length : values.length / 2), new Uint8Array(values.length / len))).toBe(true);
      for (const [dtype, v] of [["float32", x], ["bfloat16", values]] as const) {
        for (const gs of name === "NVFP4A16" ? [1, 2 ** 100, 2 ** -100] : [undefined]) {
          sameOnAndOff(
            () => quantizeLlmcLinear({ dtype, rows, cols: len * 16, values: v }, llmcPreset(name), gs),
            (m) => [...m].map(([k, t]) => `${k} ${bytesOf(t.data).toString("hex")}`),
          );
        }
      }
    });
  }
  for (const [mode, len] of [["nvfp4", 16], ["mxfp4", 32], ["mxfp8", 32]] as [MlxFpMode, number][]) {
    it(`MLX ${mode}`, () => {
      const x = everyAbsMax(len);
      const rows = x.length / (len * 16);
      for (const [dtype, data] of [["float32", x], ["bfloat16", toBf16(x)]] as const) {
        sameOnAndOff(
          () => mlxFpQuantize({ dtype, shape: [rows, len * 16], data }, mode),
          (q) => [bytesOf(q.wq).toString("hex"), bytesOf(q.scales).toString("hex")],
        );
      }
    });
  }
});
