import { describe, expect, it } from "vitest";
import { scaleShapeOf, storedNamesOf, storedTensors, valuesShapeOf } from "../../src/plan/stored.js";
import { buildPlan } from "../../src/plan/plan.js";
import { rulesFromFlags } from "../../src/plan/from-flags.js";
import { expectedTensors } from "../../src/pipeline/read-back/dequantize.js";
import { recordFor } from "../../src/pipeline/manifest.js";
import { KQUANT_LAYOUT } from "../../src/layouts/kquant.js";
import { layoutNamed } from "../../src/layouts/index.js";

describe("stored tensors: one home for what a quantized tensor stores", () => {
  it("int8 keeps the source shape and a keepdims scale", () => {
    const s = storedTensors(storedNamesOf("w"), [6, 5], { mode: "int8", axis: 1 });
    expect(s).toEqual([
      { role: "values", name: "w", dtype: "I8", shape: [6, 5] },
      { role: "scale", name: "w_scale", dtype: "F32", shape: [6, 1] },
    ]);
  });

  it("int4 halves the pack axis, rounding up; one scale per tensor keeps every dim as 1", () => {
    expect(valuesShapeOf([7, 5], { mode: "int4", axis: null, packAxis: 0 })).toEqual([4, 5]);
    expect(scaleShapeOf([7, 5], { mode: "int4", axis: null, packAxis: 0 })).toEqual([1, 1]);
  });

  it("grouped int4 stores ceil(d / block) groups on the axis for the scale and the zero point", () => {
    const s = storedTensors(storedNamesOf("w"), [7, 3], { mode: "int4_grouped", axis: 0, packAxis: 0, blockSize: 4 });
    expect(s.map((t) => [t.role, t.dtype, t.shape])).toEqual([
      ["values", "I8", [4, 3]],
      ["scale", "F32", [2, 3]],
      ["zero", "I8", [2, 3]],
    ]);
  });

  it("a float8 scale for the whole tensor is a scalar, per channel it keeps dims", () => {
    expect(scaleShapeOf([4, 4], { mode: "float8_e4m3fn", axis: null })).toEqual([]);
    expect(scaleShapeOf([4, 4], { mode: "float8_e5m2", axis: 0 })).toEqual([1, 4]);
    expect(storedTensors(storedNamesOf("w"), [4, 4], { mode: "float8_e5m2", axis: null })[0]!.dtype).toBe("F8_E5M2");
  });

  it("the plan writes and the manifest reader expects the same tensors, for every mode", () => {
    const t = { name: "m.w", dtype: "F32" as const, shape: [9, 6], byteLength: 216, file: "m.safetensors" };
    const flagSets = [
      { mode: "int8" as const },
      { mode: "int4" as const, axis: 0 },
      { mode: "int4" as const, blockSize: 4 },
      { mode: "int4" as const, blockSize: 4, axis: 0 },
      { mode: "float8" as const },
      { mode: "float8" as const, float8Kind: "e5m2" as const, axis: -1 },
    ];
    for (const flags of flagSets) {
      const step = buildPlan("m.safetensors", [t], rulesFromFlags(flags)).steps[0]!;
      if (step.kind !== "quantize") throw new Error("expected quantize");
      const expected = expectedTensors(t.name, recordFor(step), KQUANT_LAYOUT);
      if (typeof expected === "string") throw new Error(expected);
      expect(expected.map(({ name, dtype, shape, role }) => ({ name, dtype, shape, role }))).toEqual(step.stored);
    }
  });

  it("a record that names other tensors than the layout writes is refused, naming both", () => {
    const t = { name: "w", dtype: "F32" as const, shape: [4, 4], byteLength: 64, file: "m.safetensors" };
    const step = buildPlan("m.safetensors", [t], rulesFromFlags({ mode: "int8" })).steps[0]!;
    if (step.kind !== "quantize") throw new Error("expected quantize");
    const rec = { ...recordFor(step), scale: "w.scale" };
    expect(expectedTensors("w", rec, KQUANT_LAYOUT)).toBe('manifest names "w.scale" as the scale tensor, the kquant layout writes "w_scale"');
  });

  it("an unknown --layout names the choices", () => {
    expect(() => layoutNamed("gguf")).toThrow(/--layout gguf: unknown layout \(choose kquant/);
  });
});
