/**
 * The MLX mode descriptors (src/modes/mlx.ts): mlx_lm's defaults and MLX's refusals, storage, and a
 * quantize → dequantize round trip through each descriptor equal to the kernels' own, with the
 * value checks finding what MLX never writes.
 */
import { describe, expect, it } from "vitest";
import { MLX_MODES, mlxModeNamed } from "../../src/modes/mlx.js";
import { mlxAffineDequantize, mlxAffineQuantize } from "../../src/quant/mlx/affine.js";
import { mlxFpDequantize, mlxFpQuantize, type MlxFpMode } from "../../src/quant/mlx/fp.js";
import { gaussian } from "../support/files.js";

const buf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe("MLX's modes", () => {
  it("are affine, mxfp4, mxfp8 and nvfp4, with mlx_lm's defaults and MLX's refusals", () => {
    expect(MLX_MODES.map((m) => [m.name, m.defaults.bits, m.defaults.groupSize, m.scalesInDtype, m.biases])).toEqual([
      ["affine", 4, 64, true, true],
      ["mxfp4", 4, 32, false, false],
      ["mxfp8", 8, 32, false, false],
      ["nvfp4", 4, 16, false, false],
    ]);
    for (const m of MLX_MODES) expect(m.refusal(m.defaults.bits, m.defaults.groupSize)).toBeNull();
    expect(mlxModeNamed("affine")!.refusal(7, 64)).toBe("MLX's affine bit widths are 1, 2, 3, 4, 5, 6 and 8, not 7");
    expect(mlxModeNamed("mxfp8")!.refusal(8, 16)).toBe("MLX's mxfp8 takes group size 32 only, not 16");
    expect(mlxModeNamed("int8")).toBeUndefined();
  });

  it("quantize and dequantize through the descriptor as the kernels do, and find a NaN scale", () => {
    const w = { dtype: "float32" as const, shape: [8, 64], data: gaussian(8 * 64, 5, 0.05) };
    for (const m of MLX_MODES) {
      const { bits, groupSize } = m.defaults;
      const s = m.quantize(w, bits, groupSize);
      const shape = [8, (64 * bits) / 32];
      if (m.biases) {
        const q = mlxAffineQuantize(w, bits, groupSize);
        expect(buf(s.codes).equals(buf(q.wq))).toBe(true);
        expect(buf(s.scales).equals(buf(q.scales.data))).toBe(true);
        expect(buf(m.dequantize(s, shape, "float32", bits, groupSize, "float32")).equals(buf(mlxAffineDequantize(q.wq, shape, q.scales, q.biases, bits, groupSize).data))).toBe(true);
      } else {
        const q = mlxFpQuantize(w, m.name as MlxFpMode);
        expect(buf(s.codes).equals(buf(q.wq))).toBe(true);
        expect(buf(s.scales).equals(buf(q.scales))).toBe(true);
        expect(buf(m.dequantize(s, shape, null, bits, groupSize, "bfloat16")).equals(buf(mlxFpDequantize(q.wq, shape, q.scales, m.name as MlxFpMode).data))).toBe(true);
      }
      const names = { codes: "w.weight", scales: "w.scales", biases: "w.biases" };
      expect(m.problems(s, "float32", names)).toEqual([]);
      const bad = { ...s, scales: s.scales.slice() };
      if (m.scalesInDtype) new Float32Array(bad.scales.buffer)[0] = NaN;
      else bad.scales[0] = 0xff;
      expect(m.problems(bad, "float32", names)).toEqual([`scales "w.scales": 1 of ${(8 * 64) / groupSize} value(s) are not finite and non-zero`]);
    }
  });
});

describe("each MLX mode's default verify floor is under what it gives on Gaussian weights", () => {
  const [rows, cols] = [128, 512];
  const w = gaussian(rows * cols, 11); // σ 0.02, as a model's weights
  const cases: [string, number, number][] = [
    ...[1, 2, 3, 4, 5, 6, 8].flatMap((b) => [32, 64, 128].map((g): [string, number, number] => ["affine", b, g])),
    ["mxfp4", 4, 32], ["mxfp8", 8, 32], ["nvfp4", 4, 16],
  ];
  it.each(cases)("%s %i-bit, groups of %i", (name, bits, groupSize) => {
    const d = mlxModeNamed(name)!;
    const stored = d.quantize({ dtype: "float32", shape: [rows, cols], data: w }, bits, groupSize);
    const back = d.dequantize(stored, [rows, (cols * bits) / 32], "float32", bits, groupSize, "float32") as Float32Array;
    let err = 0;
    let sig = 0;
    for (let i = 0; i < w.length; i++) {
      err += (back[i]! - w[i]!) ** 2;
      sig += w[i]! ** 2;
    }
    const sqnr = 10 * Math.log10(sig / err);
    expect(sqnr).toBeGreaterThan(d.minSqnrDb(bits) + 3);
    // Affine 8-bit in small groups reaches 46 dB, 16 over the floor it shares with llm-compressor's W8.
    expect(sqnr).toBeLessThan(d.minSqnrDb(bits) + 17);
  });
});
