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
