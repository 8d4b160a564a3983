import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import { createSafetensorsWriter, writeShardIndex } from "../../src/formats/safetensors-writer.js";
import type { PlannedTensor } from "../../src/formats/types.js";
import { listDir, patternBytes, rejection, tempDir } from "./helpers.js";

async function shard(path: string, tensors: [string, number][], metadata: Record<string, string>): Promise<Map<string, Uint8Array>> {
  const planned: PlannedTensor[] = tensors.map(([name, n]) => ({ name, dtype: "U8", shape: [n] }));
  const data = new Map(tensors.map(([name, n], i) => [name, patternBytes(n, n * 31 + i)]));
  const w = await createSafetensorsWriter(path, planned, metadata);
  for (const [name] of tensors) await w.write(name, data.get(name)!);
  await w.finish();
  return data;
}

describe("sharded safetensors", () => {
  it("reads an index as one model, tensors in shard order", async () => {
    const dir = await tempDir();
    const second = await shard(join(dir, "model-00002-of-00002.safetensors"), [["c", 3], ["d", 4]], { format: "pt" });
    const first = await shard(join(dir, "model-00001-of-00002.safetensors"), [["b", 2], ["a", 1]], { format: "pt" });
    const weight_map = { a: "model-00001-of-00002.safetensors", d: "model-00002-of-00002.safetensors", b: "model-00001-of-00002.safetensors", c: "model-00002-of-00002.safetensors" };
    const index = join(dir, "model.safetensors.index.json");
    await writeShardIndex(index, { metadata: { total_size: 10 }, weight_map });
    expect(JSON.parse(await readFile(index, "utf8"))).toEqual({ metadata: { total_size: 10 }, weight_map });

    const r = await openTensors(index);
    expect(r.path).toBe(index);
    expect(r.metadata).toEqual({ format: "pt" });
    expect(r.tensors.map((t) => [t.name, t.file])).toEqual([
      ["b", join(dir, "model-00001-of-00002.safetensors")],
      ["a", join(dir, "model-00001-of-00002.safetensors")],
      ["c", join(dir, "model-00002-of-00002.safetensors")],
      ["d", join(dir, "model-00002-of-00002.safetensors")],
    ]);
    for (const [name, bytes] of [...first, ...second]) expect(await r.read(name)).toEqual(bytes);
    await r.close();
  });

  it("refuses an index that disagrees with its shards", async () => {
    const dir = await tempDir();
    await shard(join(dir, "s1.safetensors"), [["a", 1], ["x", 1]], {});
    await shard(join(dir, "s2.safetensors"), [["a", 1]], {});
    const index = join(dir, "m.safetensors.index.json");
    await writeShardIndex(index, { metadata: { total_size: 2 }, weight_map: { a: "s1.safetensors" } });
    expect((await rejection(openTensors(index))).message).toBe(`${index}: tensor "x": in shard s1.safetensors but not in the index's weight_map`);
    await writeShardIndex(index, { metadata: { total_size: 2 }, weight_map: { a: "s2.safetensors", x: "s1.safetensors" } });
    expect((await rejection(openTensors(index))).message).toBe(`${index}: tensor "a": index says shard s2.safetensors but it is in s1.safetensors`);
    await writeShardIndex(index, { metadata: { total_size: 2 }, weight_map: { x: "s1.safetensors", a: "s2.safetensors", y: "s2.safetensors" } });
    expect((await rejection(openTensors(index))).message).toMatch(/tensor "a": index says shard s2\.safetensors but it is in s1\.safetensors/);
    expect(await listDir(dir)).toEqual(["m.safetensors.index.json", "s1.safetensors", "s2.safetensors"]);
  });

  it("refuses a bad total_size when writing an index", async () => {
    const dir = await tempDir();
    const err = await rejection(writeShardIndex(join(dir, "i.json"), { metadata: { total_size: -1 }, weight_map: {} }));
    expect(err.message).toMatch(/total_size must be a non-negative integer/);
    expect(await listDir(dir)).toEqual([]);
  });
});
