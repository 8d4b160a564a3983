/**
 * The --scheme descriptors' read-back facts: each preset's default `verify --against` floor sits
 * under what its quantization gives on Gaussian weights (measured here through kquant's kernels,
 * which match llm-compressor byte for byte: test/quant/llmc), and the bits per weight it stores.
 */
import { describe, expect, it } from "vitest";
import { stDTypeOfKeras } from "../../src/formats/dtypes.js";
import { SCHEME_NAMES, schemeNamed } from "../../src/modes/llmc-schemes.js";
import { roundBf16 } from "../../src/quant/llmc/arith.js";
import { decompressLlmcLinear } from "../../src/quant/llmc/decompress.js";
import { quantizeLlmcLinear } from "../../src/quant/llmc/linear.js";
import { errorMetrics } from "../../src/quant/error-metrics.js";
import { byteView } from "../../src/quant/tensor.js";
import { gaussian } from "../support/files.js";
import { prngWeight } from "../support/llmc.js";

const rows = 64;
const cols = 512;
const weights = Float32Array.from(gaussian(rows * cols, 7), roundBf16);

describe("each preset's default floor is under what it gives on Gaussian weights, and above a wrecked tensor where it can be", () => {
  it.each(SCHEME_NAMES)("%s", (name) => {
    const d = schemeNamed(name);
    const stored = quantizeLlmcLinear({ dtype: "bfloat16", rows, cols, values: weights }, d.preset);
    const back = decompressLlmcLinear(d.preset, rows, cols, new Map([...stored].map(([k, t]) => [k, byteView(t.data)])), "bfloat16");
    const sqnr = errorMetrics(weights, back.values).sqnrDb;
    expect(sqnr).toBeGreaterThan(d.minSqnrDb + 3);
    expect(sqnr).toBeLessThan(d.minSqnrDb + 15);
  });
});

describe("bits per weight stored (codes, scales, zero points)", () => {
  it.each([
    ["W4A16", 16, 4.125],
    ["W4A16", 32, 4.25],
    ["W4A16_ASYM", 16, 4.15625],
    ["W8A8", 16, 8 + 16 / 512],
    ["FP8_BLOCK", 16, 8 + 16 / (128 * 128)],
    ["NVFP4A16", 16, 4.5],
    ["MXFP4", 16, 4.25],
    ["MXFP8A16", 32, 8.25],
  ])("%s with %i-bit scales: %f", (name, tBits, bits) => {
    expect(schemeNamed(name).bitsPerWeight(128, 512, tBits)).toBe(bits); // a [128, 512] weight
  });
});

describe("the stored tensors the descriptor names (what --dry-run reports) are the kernel's, dtypes and shapes", () => {
  it.each(SCHEME_NAMES)("%s", (name) => {
    const s = schemeNamed(name);
    for (const [r, c, dtype, T] of [[130, 384, "bfloat16", "BF16"], [64, 256, "float32", "F32"]] as const) {
      const w = prngWeight(7, [r, c], dtype);
      const got = [...quantizeLlmcLinear(w, s.preset, s.preset.weights!.strategy === "tensor_group" ? 1 : undefined)].map(([suffix, t]) => ({ suffix, dtype: stDTypeOfKeras(t.dtype), shape: [...t.shape] }));
      const shapes = s.storedShapes(r, c);
      expect(s.stored.map((t, i) => ({ suffix: t.suffix, dtype: t.dtype === "T" ? T : t.dtype, shape: shapes[i] }))).toEqual(got);
    }
  });
});
