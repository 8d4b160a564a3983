/** A small Hugging Face-like model folder (config.json, weights, tokenizer, card) for layout and folder tests. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeShardIndex } from "../../src/formats/safetensors-writer.js";
import { gaussian, writeSafetensors, type TestTensor } from "../support/files.js";

/**
 * Shapes chosen for the layouts' edges: out 40 (zero points pad a word), in 37 (odd: int4 pads a
 * nibble; no group divides it), a norm vector, an embedding and an lm_head.
 */
export function modelTensors(): TestTensor[] {
  const t = (name: string, shape: number[], seed: number, std = 0.05): TestTensor => ({
    name,
    dtype: "F32",
    shape,
    data: gaussian(shape.reduce((a, b) => a * b, 1), seed, std),
  });
  return [
    t("model.embed_tokens.weight", [48, 64], 1),
    t("model.layers.0.self_attn.q_proj.weight", [40, 64], 2),
    t("model.layers.0.mlp.down_proj.weight", [64, 128], 3),
    t("model.layers.0.mlp.odd_proj.weight", [24, 37], 4),
    t("model.layers.0.input_layernorm.weight", [64], 5, 1),
    t("lm_head.weight", [48, 64], 6),
  ];
}

export const CONFIG = { architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 64 };

/**
 * Writes the folder (one file, or two shards with an index) and returns its path. `tied`: as
 * transformers saves a model with tie_word_embeddings, no lm_head.weight and the config says so.
 */
export async function writeModelFolder(dir: string, sharded = false, tied = false): Promise<string> {
  const tensors = modelTensors().filter((t) => !tied || t.name !== "lm_head.weight");
  const config = tied ? { ...CONFIG, tie_word_embeddings: true } : CONFIG;
  writeFileSync(join(dir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  writeFileSync(join(dir, "tokenizer.json"), '{"model": {"type": "WordLevel"}}\n');
  writeFileSync(join(dir, "README.md"), "# a test model\n");
  if (!sharded) {
    await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
    return dir;
  }
  const shards = [tensors.slice(0, 3), tensors.slice(3)];
  const weightMap: Record<string, string> = {};
  for (const [i, part] of shards.entries()) {
    const name = `model-0000${i + 1}-of-00002.safetensors`;
    await writeSafetensors(join(dir, name), part, { format: "pt" });
    for (const t of part) weightMap[t.name] = name;
  }
  await writeShardIndex(join(dir, "model.safetensors.index.json"), { metadata: { total_size: 0 }, weight_map: weightMap });
  return dir;
}
