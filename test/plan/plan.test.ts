import { describe, expect, it } from "vitest";
import type { TensorInfo } from "../../src/formats/types.js";
import { rulesFromFlags, specFromFlags } from "../../src/plan/from-flags.js";
import { compileGlob } from "../../src/plan/glob.js";
import { parseRecipe } from "../../src/plan/recipe.js";
import { buildPlan } from "../../src/plan/plan.js";
import { storedRole } from "../../src/plan/stored.js";
import type { QuantizeStep } from "../../src/plan/plan.js";

const role = (step: QuantizeStep, r: "values" | "scale" | "zero") => storedRole(step.stored, r)!;

const t = (name: string, dtype: TensorInfo["dtype"], shape: number[]): TensorInfo => ({
  name,
  dtype,
  shape,
  byteLength: shape.reduce((a, b) => a * b, 1) * (dtype === "F32" ? 4 : dtype === "I8" ? 1 : 2),
  file: "m.safetensors",
});

const model = [
  t("embed.weight", "BF16", [10, 4]),
  t("layer.q.weight", "F32", [6, 5]),
  t("layer.q.bias", "F32", [6]),
  t("norm.weight", "F32", [4]),
  t("already.q", "I8", [4, 4]),
  t("lm_head.weight", "F16", [10, 4]),
];

describe("glob patterns", () => {
  it("match whole dotted names with * and ?", () => {
    expect(compileGlob("*.weight").test("a.b.weight")).toBe(true);
    expect(compileGlob("*.weight").test("a.b.weights")).toBe(false);
    expect(compileGlob("layer.?.w").test("layer.1.w")).toBe(true);
    expect(compileGlob("layer.?.w").test("layer.10.w")).toBe(false);
    expect(compileGlob("a+b(c)").test("a+b(c)")).toBe(true);
  });
});

describe("buildPlan with flags", () => {
  it("quantizes floating tensors of rank >= 2 and passes the rest through", () => {
    const plan = buildPlan("m.safetensors", model, rulesFromFlags({ mode: "int8" }));
    const kinds = Object.fromEntries(plan.steps.map((s) => [s.source.name, s.kind]));
    expect(kinds).toEqual({
      "embed.weight": "quantize",
      "layer.q.weight": "quantize",
      "layer.q.bias": "passthrough",
      "norm.weight": "passthrough",
      "already.q": "passthrough",
      "lm_head.weight": "quantize",
    });
    const q = plan.steps[1]!;
    if (q.kind !== "quantize") throw new Error("expected quantize");
    expect(role(q, "values")).toEqual({ role: "values", name: "layer.q.weight", dtype: "I8", shape: [6, 5] });
    expect(role(q, "scale")).toEqual({ role: "scale", name: "layer.q.weight_scale", dtype: "F32", shape: [6, 1] });
    expect(q.spec.axis).toBe(1);
  });

  it("packs int4 along the quantization axis, rounding odd lengths up", () => {
    const plan = buildPlan("m.safetensors", model, rulesFromFlags({ mode: "int4", axis: 0 }));
    const q = plan.steps.find((s) => s.source.name === "layer.q.weight")!;
    if (q.kind !== "quantize") throw new Error("expected quantize");
    expect(role(q, "values").shape).toEqual([3, 5]);
    expect(role(q, "scale").shape).toEqual([1, 5]);
    expect(q.source.shape[q.spec.packAxis!]).toBe(6);
    expect(q.spec.packAxis).toBe(0);
  });

  it("gives grouped int4 a scale and zero per group", () => {
    const plan = buildPlan("m.safetensors", [t("w", "F32", [7, 3])], rulesFromFlags({ mode: "int4", axis: 0, blockSize: 4 }));
    const q = plan.steps[0]!;
    if (q.kind !== "quantize") throw new Error("expected quantize");
    expect(q.spec.mode).toBe("int4_grouped");
    expect(role(q, "scale").shape).toEqual([2, 3]);
    expect(role(q, "zero")).toEqual({ role: "zero", name: "w_zero", dtype: "I8", shape: [2, 3] });
    expect(role(q, "values").shape).toEqual([4, 3]);
  });

  it("keeps a per-tensor float8 scale as a scalar", () => {
    const plan = buildPlan("m.safetensors", [t("w", "F32", [4, 4])], rulesFromFlags({ mode: "float8", float8Kind: "e5m2" }));
    const q = plan.steps[0]!;
    if (q.kind !== "quantize") throw new Error("expected quantize");
    expect(role(q, "values").dtype).toBe("F8_E5M2");
    expect(role(q, "scale").shape).toEqual([]);
  });

  it("honours --include and --exclude, warning about patterns that match nothing", () => {
    const plan = buildPlan(
      "m.safetensors",
      model,
      rulesFromFlags({ mode: "int8", include: ["layer.*", "nothing.*"], exclude: ["*.bias", "lm_head.*"] }),
    );
    const quantized = plan.steps.filter((s) => s.kind === "quantize").map((s) => s.source.name);
    expect(quantized).toEqual(["layer.q.weight"]);
    expect(plan.warnings).toEqual([]);
    const none = buildPlan("m.safetensors", model, rulesFromFlags({ mode: "int8", exclude: ["nope"] }));
    expect(none.warnings).toEqual(["--exclude (nope) matched no tensor"]);
  });

  it("keeps a tensor that cannot take a flag's mode as it is, with the reason", () => {
    const tensors = [t("a", "F32", [2, 3, 4]), t("b", "F32", [4, 4]), t("c", "F32", [2, 2, 2])];
    const plan = buildPlan("m.safetensors", tensors, rulesFromFlags({ mode: "int4", axis: 0, blockSize: 2 }));
    expect(plan.steps.map((s) => s.kind)).toEqual(["passthrough", "quantize", "passthrough"]);
    expect(plan.fallbacks.map((s) => [s.source.name, s.reason])).toEqual([
      ["a", "cannot take --int4: grouped int4 needs a 2-D tensor, got shape [2,3,4]"],
      ["c", "cannot take --int4: grouped int4 needs a 2-D tensor, got shape [2,2,2]"],
    ]);
  });

  it("--strict refuses a fallback with one line naming the first tensor and the count", () => {
    const tensors = [t("a", "F32", [2, 3, 4]), t("b", "F32", [4, 4]), t("c", "F32", [2, 2, 2])];
    expect(() => buildPlan("m.safetensors", tensors, rulesFromFlags({ mode: "int4", axis: 0, blockSize: 2 }), undefined, { strict: true })).toThrow(
      /^m\.safetensors: tensor "a": cannot take --int4: grouped int4 needs a 2-D tensor, got shape \[2,3,4\] \(\+1 more\) \(without --strict/,
    );
  });

  it("a glob rule falls back on a rank-1 bias; a rule naming the tensor exactly fails", () => {
    const tensors = [t("w", "F32", [4, 4]), t("bias", "F32", [4])];
    const glob = buildPlan("m.safetensors", tensors, parseRecipe("r.json", '{"rules":[{"match":"*","mode":"int4","block_size":2}]}'));
    expect(glob.fallbacks.map((s) => s.source.name)).toEqual(["bias"]);
    const exact = parseRecipe("r.json", '{"rules":[{"match":["bias","w"],"mode":"int4","block_size":2}]}');
    expect(() => buildPlan("m.safetensors", tensors, exact)).toThrow(/^m\.safetensors: tensor "bias": recipe rule 1 names it, and grouped int4 needs a 2-D tensor/);
  });

  it("a plan that quantizes nothing is an error (an axis no tensor has, an --include that matches nothing)", () => {
    expect(() => buildPlan("m.safetensors", [t("b", "F32", [4, 4])], rulesFromFlags({ mode: "int8", axis: 2 }))).toThrow(
      /^m\.safetensors: tensor "b": nothing to quantize, nothing written; it cannot take --int8: axis 2 is out of range for shape \[4,4\]$/,
    );
    expect(() => buildPlan("m.safetensors", model, rulesFromFlags({ mode: "int8", include: ["nope.*"] }))).toThrow(/nothing to quantize.*no rule matched/);
    expect(buildPlan("m.safetensors", [t("n", "F32", [4])], rulesFromFlags({ mode: "int8" }), undefined, { requireQuantized: false }).steps).toHaveLength(1);
  });

  it("refuses an output name that collides with an input tensor", () => {
    const tensors = [t("w", "F32", [2, 2]), t("w_scale", "F32", [2])];
    expect(() => buildPlan("m.safetensors", tensors, rulesFromFlags({ mode: "int8" }))).toThrow(/tensor "w_scale": would be written twice/);
  });
});

describe("flags", () => {
  it("reject combinations that mean nothing", () => {
    expect(() => specFromFlags({ mode: "int8", blockSize: 128 })).toThrow(/--block-size 128: applies to --int4 only/);
    expect(() => specFromFlags({ mode: "int8", axis: 0, perTensor: true })).toThrow(/exclude each other/);
    expect(() => specFromFlags({ mode: "float8", valueRange: [-1, 1] })).toThrow(/does not apply/);
  });
  it("are checked once, when the rules are built, naming the flag and its value", () => {
    expect(() => specFromFlags({ mode: "int4", blockSize: 0 })).toThrow(/^--block-size 0: block size 0 is not a positive integer/);
    expect(() => specFromFlags({ mode: "int8", valueRange: [-200, 127] })).toThrow(/^--value-range -200,127: value range \[-200, 127\] does not fit int8/);
    expect(() => specFromFlags({ mode: "int4", valueRange: [-8, 9] })).toThrow(/^--value-range -8,9: .*does not fit int4/);
    expect(() => specFromFlags({ mode: "float8", margin: 31 })).toThrow(/^--margin 31: margin 31 makes 2\*\*margin overflow int32/);
    expect(() => parseRecipe("r.json", '{"rules":[{"match":"*","mode":"int4","block_size":-4}]}')).toThrow(/^r\.json: rule 1: "block_size": block size -4/);
  });
  it("default to Keras's arguments", () => {
    expect(specFromFlags({ mode: "int8" })).toEqual({ mode: "int8", axis: -1, valueRange: [-127, 127], epsilon: 1e-7 });
    expect(specFromFlags({ mode: "int4", blockSize: 64 })).toMatchObject({ mode: "int4_grouped", axis: -1, blockSize: 64 });
    expect(specFromFlags({ mode: "float8" })).toEqual({ mode: "float8_e4m3fn", axis: null, margin: 0 });
  });
});
