/** Sharded test checkpoints with every kind of tensor the pipeline treats differently. */
import { join } from "node:path";
import { writeShardIndex } from "../../src/formats/safetensors-writer.js";
import { gaussian, writeSafetensors, type TestTensor } from "../support/files.js";

function bf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = bits[i]! >>> 16;
  return out;
}

/** Two shards: F32 and BF16 matrices (some tall enough to be split into several row slices), a vector, an odd shape. */
export async function writeShardedCheckpoint(dir: string): Promise<string> {
  const a: TestTensor[] = [
    { name: "layers.0.attn.weight", dtype: "F32", shape: [1100, 1024], data: gaussian(1100 * 1024, 1) },
    { name: "layers.0.norm.weight", dtype: "F32", shape: [1024], data: gaussian(1024, 2, 1) },
    { name: "layers.0.mlp.weight", dtype: "BF16", shape: [300, 256], data: bf16(gaussian(300 * 256, 3)) },
  ];
  const b: TestTensor[] = [
    { name: "layers.1.attn.weight", dtype: "F32", shape: [77, 130], data: gaussian(77 * 130, 4) },
    { name: "layers.1.mlp.weight", dtype: "F32", shape: [2048, 640], data: gaussian(2048 * 640, 5) },
    { name: "lm_head.weight", dtype: "BF16", shape: [512, 384], data: bf16(gaussian(512 * 384, 6)) },
  ];
  const metadata = { format: "pt" };
  await writeSafetensors(join(dir, "model-00001-of-00002.safetensors"), a, metadata);
  await writeSafetensors(join(dir, "model-00002-of-00002.safetensors"), b, metadata);
  const weightMap: Record<string, string> = {};
  for (const t of a) weightMap[t.name] = "model-00001-of-00002.safetensors";
  for (const t of b) weightMap[t.name] = "model-00002-of-00002.safetensors";
  const index = join(dir, "model.safetensors.index.json");
  await writeShardIndex(index, { metadata: { total_size: 0 }, weight_map: weightMap });
  return index;
}
