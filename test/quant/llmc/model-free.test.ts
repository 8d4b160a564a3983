import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { bf16Bits } from "../../../src/quant/llmc/arith.js";
import { llmcGlobalScale, quantizeLlmcLinear, type LlmcWeight } from "../../../src/quant/llmc/linear.js";
import { formatOf, llmcPreset } from "../../../src/quant/llmc/presets.js";
import { llmcActions, splitTensorName } from "../../../src/plan/llmc-targets.js";
import { bytesOf } from "../../support/golden.js";
import { loadLlmcGolden, prngWeight, type ModelFreeCase, type ModelFreeDigest } from "../../support/llmc.js";

type Digest = ModelFreeDigest;

const golden = loadLlmcGolden<ModelFreeCase>("model_free");
const model = golden.cases.find((c) => c.op === "model")!;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * The tiny Llama's weights, rebuilt from prng.py's seeds (bfloat16, as transformers saved them),
 * given to the kernels as their bfloat16 bit patterns, as --scheme reads them (format-slice.ts).
 */
const weights = new Map<string, { digest: Digest; bits: Uint16Array; w: LlmcWeight }>(
  Object.entries(model.tensors).map(([name, d]) => {
    const [rows, cols] = d.shape.length === 2 ? (d.shape as [number, number]) : [1, d.shape[0]!];
    const bits = Uint16Array.from(prngWeight(d.prng_seed!, [rows, cols], "bfloat16").values, (v) => bf16Bits(v));
    return [name, { digest: d, bits, w: { dtype: "bfloat16", rows, cols, values: { bits, kind: "bfloat16" } } }];
  }),
);

describe("model_free_ptq on a tiny Llama (transformers, 1 layer): every output tensor, every data-free preset", () => {
  it("rebuilds the model's weights bit for bit", () => {
    expect(weights.size).toBe(12);
    for (const [name, { digest, bits }] of weights) expect([name, sha(bytesOf(bits))]).toEqual([name, digest.sha256]);
  });

  for (const c of golden.cases.filter((k) => k.op === "model_free_ptq")) {
    it(`${c.preset}, ignore ${JSON.stringify(c.ignore)}${c.error ? ": refused" : ""}`, () => {
      const preset = llmcPreset(c.preset!);
      if (c.error) {
        expect(preset.refusal).toBe(c.error.message);
        return;
      }
      // the reference's own check: model_free_ptq's files equal its converter's per-tensor output
      expect(c.converter_equal).toBe(true);
      const tensorGroup = preset.weights!.strategy === "tensor_group";
      const actions = llmcActions([...weights.keys()], c.ignore!, tensorGroup);
      const quantizedAny = [...actions.values()].some((a) => a.kind === "quantize");
      expect(c.quantization_config!.format).toBe(quantizedAny ? formatOf(preset) : "dense");
      const got: Record<string, Digest> = {};
      let totalSize = 0;
      for (const [name, { digest, bits, w }] of weights) {
        const action = actions.get(name)!;
        if (action.kind === "copy") {
          const bytes = bytesOf(bits);
          got[name] = { dtype: "bfloat16", shape: digest.shape, sha256: sha(bytes) };
          totalSize += bytes.length;
          continue;
        }
        const gs = tensorGroup ? llmcGlobalScale(action.globalSet.map((n) => weights.get(n)!.w)) : undefined;
        const prefix = `${splitTensorName(name).module}.`;
        for (const [suffix, t] of quantizeLlmcLinear(w, preset, gs)) {
          const bytes = bytesOf(t.data);
          got[prefix + suffix] = { dtype: t.dtype, shape: t.shape, sha256: sha(bytes) };
          totalSize += bytes.length;
        }
      }
      expect(got).toEqual(c.tensors);
      // the index model_free_ptq writes: every tensor in the one shard, total_size = their bytes
      expect(c.index).toEqual({ metadata: { total_size: totalSize }, weight_map: Object.fromEntries(Object.keys(got).sort().map((k) => [k, "model.safetensors"])) });
    });
  }
});
