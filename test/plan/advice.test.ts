/** The plan's notes (advice.ts): flags that change nothing, axes per input column, runs that leave most weights float. */
import { describe, expect, it } from "vitest";
import type { TensorInfo } from "../../src/formats/types.js";
import { COMPRESSED_TENSORS_LAYOUT } from "../../src/layouts/compressed-tensors.js";
import { KQUANT_LAYOUT } from "../../src/layouts/kquant.js";
import { MLX_LAYOUT } from "../../src/layouts/mlx.js";
import { rulesFromFlags, type QuantFlags } from "../../src/plan/from-flags.js";
import { buildPlan } from "../../src/plan/plan.js";
import type { Layout } from "../../src/layouts/layout.js";

const t = (name: string, shape: number[]): TensorInfo => ({ name, dtype: "BF16", shape, byteLength: shape.reduce((a, b) => a * b, 1) * 2, file: "m.safetensors" });

/** One SmolLM2-135M layer: hidden 576, MLP 1536, 3 KV heads of 64, tied embeddings. */
const layer = [
  t("model.embed_tokens.weight", [1000, 576]),
  ...["q_proj", "o_proj"].map((p) => t(`model.layers.0.self_attn.${p}.weight`, [576, 576])),
  ...["k_proj", "v_proj"].map((p) => t(`model.layers.0.self_attn.${p}.weight`, [192, 576])),
  ...["gate_proj", "up_proj"].map((p) => t(`model.layers.0.mlp.${p}.weight`, [1536, 576])),
  t("model.layers.0.mlp.down_proj.weight", [576, 1536]),
  t("model.norm.weight", [576]),
];

const notes = (flags: QuantFlags, layout: Layout = KQUANT_LAYOUT, pytorchLayout = true) =>
  buildPlan("m", layer, rulesFromFlags(flags, !!layout.int8Groups), layout, { source: { pytorchLayout } }).warnings;

describe("plan notes", () => {
  it("a group size that leaves most weights float says so, with the count and a block size that divides them", () => {
    expect(notes({ mode: "int4", blockSize: 128 }, COMPRESSED_TENSORS_LAYOUT)).toEqual([
      "7 of 8 weights stay float (mostly: compressed-tensors layout: group size 128 does not divide in_features); --block-size 64 or 32 divides 576; the output is close to the input",
      expect.stringMatching(/^grouped int4 in compressed-tensors does not load the default way/),
    ]);
    expect(notes({ mode: "int4", blockSize: 128 }, MLX_LAYOUT)).toEqual([
      "7 of 8 weights stay float (mlx layout: group size 128 does not divide the last dimension); --block-size 64 or 32 divides 576; the output is close to the input",
    ]);
    expect(notes({ mode: "int4", blockSize: 64 }, COMPRESSED_TENSORS_LAYOUT).filter((n) => n.includes("stay float"))).toEqual([]);
  });

  it("an axis the layout overrides changes nothing, and the note says so", () => {
    expect(notes({ mode: "int4", axis: 0 }, COMPRESSED_TENSORS_LAYOUT)).toEqual([
      "--int4: axis 0 changes nothing with --layout compressed-tensors: the layout sets the scale axes itself (one scale per output channel, or groups along the input)",
    ]);
    expect(notes({ mode: "int8", axis: -1 }, COMPRESSED_TENSORS_LAYOUT)).toEqual([]);
  });

  it("axis 0 on a PyTorch-layout checkpoint is one scale per input column: a note naming --axis -1; none for other layouts of the input", () => {
    expect(notes({ mode: "int4", axis: 0 })).toEqual([
      "--int4: axis 0 on a PyTorch-layout checkpoint gives one scale per input column (Linear weights are [out, in] here; Keras's axis 0 is per output channel for its [in, out] kernels); --axis -1 is per output channel",
    ]);
    expect(notes({ mode: "int4", axis: 0 }, KQUANT_LAYOUT, false)).toEqual([]);
    expect(notes({ mode: "int4" })).toEqual([]);
  });
});

describe("grouped int4 in compressed-tensors", () => {
  const head = "grouped int4 in compressed-tensors does not load the default way in transformers 5.24 / compressed-tensors 0.20 (zero point shape); ";
  const tail = "; use --int4 per channel, or --layout kquant to keep the groups";

  it("alone: one note before anything is read, naming dequantize=True", () => {
    expect(notes({ mode: "int4", blockSize: 64 }, COMPRESSED_TENSORS_LAYOUT)).toEqual([`${head}load it with CompressedTensorsConfig(dequantize=True)${tail}`]);
  });

  it("in a recipe with other modes: loads neither way, and the note says so", () => {
    const rules = [
      ...rulesFromFlags({ mode: "int8", include: ["*self_attn*"] }, true),
      ...rulesFromFlags({ mode: "int4", blockSize: 64, include: ["*mlp*"] }, true),
    ];
    const plan = buildPlan("m", layer, rules, COMPRESSED_TENSORS_LAYOUT, { source: { pytorchLayout: true } });
    expect(plan.steps.filter((s) => s.kind === "quantize").map((s) => s.kind === "quantize" && s.spec.mode).sort()).toEqual([
      ...Array(3).fill("int4_grouped"),
      ...Array(4).fill("int8"),
    ].sort());
    expect(plan.warnings).toEqual([`${head}nor, mixed with other modes, with CompressedTensorsConfig(dequantize=True) (one scheme for all)${tail}`]);
  });

  it("per-channel int4, int8, float8, and grouped int4 in other layouts: no such note", () => {
    for (const flags of [{ mode: "int4" }, { mode: "int8" }, { mode: "float8", float8Kind: "e4m3" }] as QuantFlags[]) {
      expect(notes(flags, COMPRESSED_TENSORS_LAYOUT)).toEqual([]);
    }
    expect(notes({ mode: "int4", blockSize: 64 })).toEqual([]);
  });
});
