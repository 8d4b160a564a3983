/**
 * Issue #22 item 8 (in part): verify checks the manifest beside the output against the one in the
 * files' __metadata__. A sidecar record edited, and a shard dropped from a sharded output's index
 * (its weight-map entries and file gone), each fail plain verify (exit 1) naming the tensor; an
 * untouched output passes.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeModelFolder } from "../layouts/model-folder.js";
import { builtCli, caseDir, expectOrderly, kquant } from "./harness.js";

let root: string;
const cli = builtCli(async (built) => {
  root = caseDir("sidecar");
  mkdirSync(join(root, "model"));
  await writeModelFolder(join(root, "model"), true);
  mkdirSync(join(root, "q"));
  const r = await kquant(built, ["quantize", "model/model.safetensors.index.json", "--int8", "-o", "q/m.safetensors.index.json", "-q"], { cwd: root });
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A copy of the quantized output in a fresh folder, changed by `spoil`. */
function spoiled(name: string, spoil: (dir: string) => void): string {
  const dir = join(root, name);
  mkdirSync(dir);
  for (const f of readdirSync(join(root, "q"))) writeFileSync(join(dir, f), readFileSync(join(root, "q", f)));
  spoil(dir);
  return `${name}/m.safetensors.index.json`;
}

describe("verify holds the sidecar manifest to the embedded one", () => {
  it("an untouched sharded output passes", async () => {
    const r = await kquant(cli(), ["verify", "q/m.safetensors.index.json"], { cwd: root });
    expectOrderly(r, "verify");
    expect(r.code, r.stderr).toBe(0);
  });

  it("a shard dropped from the index fails", async () => {
    const input = spoiled("dropped", (dir) => {
      const indexPath = join(dir, "m.safetensors.index.json");
      const index = JSON.parse(readFileSync(indexPath, "utf8")) as { metadata: unknown; weight_map: Record<string, string> };
      const shards = [...new Set(Object.values(index.weight_map))].sort();
      const drop = shards[shards.length - 1]!;
      index.weight_map = Object.fromEntries(Object.entries(index.weight_map).filter(([, s]) => s !== drop));
      writeFileSync(indexPath, JSON.stringify(index));
      rmSync(join(dir, drop));
    });
    const r = await kquant(cli(), ["verify", input], { cwd: root });
    expectOrderly(r, "verify");
    expect(r.code).toBe(1);
    expect(`${r.stdout}${r.stderr}`).toMatch(/in no file's __metadata__ \(a shard dropped from the index\?\)/);
  });

  it("a record edited in the sidecar fails", async () => {
    const input = spoiled("edited", (dir) => {
      const path = join(dir, "m.safetensors.index.json.json");
      const m = JSON.parse(readFileSync(path, "utf8")) as { tensors: Record<string, { shape: number[] }> };
      const name = Object.keys(m.tensors)[0]!;
      m.tensors[name]!.shape = [1, 1];
      writeFileSync(path, JSON.stringify(m, null, 2));
    });
    const r = await kquant(cli(), ["verify", input], { cwd: root });
    expectOrderly(r, "verify");
    expect(r.code).toBe(1);
    expect(`${r.stdout}${r.stderr}`).toMatch(/the record of tensor ".*" differs from the one in __metadata__/);
  });
});
