/**
 * Issue #22 items 2 and 3: paths that come from files stay in their folder, and no two outputs of
 * a run share a name. A part file naming an index or shard outside its folder, an index whose
 * weight map leaves it, and an index whose shards share a file name in two subfolders are each
 * refused in one line, exit 2, with nothing written anywhere.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeShardIndex } from "../../src/formats/safetensors-writer.js";
import { modelTensors, writeModelFolder } from "../layouts/model-folder.js";
import { writeSafetensors } from "../support/files.js";
import { builtCli, caseDir, changes, expectOrderly, kquant, snapshot } from "./harness.js";

let root: string;
const cli = builtCli();

/** root/work (the run's folder) and root/outside (where a hostile file points). */
function fresh(): { work: string; outside: string } {
  root = caseDir("paths");
  const work = join(root, "work");
  const outside = join(root, "outside");
  mkdirSync(work);
  mkdirSync(outside);
  writeFileSync(join(outside, "victim.safetensors.index.json"), "victim\n");
  return { work, outside };
}

/** Two --shard jobs' outputs in work/out, parts unmerged. */
async function shardJobs(work: string): Promise<string> {
  const model = join(work, "model");
  mkdirSync(model);
  await writeModelFolder(model, true);
  for (const job of ["1/2", "2/2"]) {
    const r = await kquant(cli(), ["quantize", "model", "--int8", "-o", "out", "--shard", job, "-q"], { cwd: work });
    expect(r.code, r.stderr).toBe(0);
  }
  return join(work, "out");
}

describe("merge-index writes only in the parts' folder", () => {
  const forged: [string, (part: Record<string, unknown>) => void][] = [
    ["index ../outside/…", (p) => (p.index = "../outside/victim.safetensors.index.json")],
    ["index absolute", (p) => (p.index = join(root, "outside", "victim.safetensors.index.json"))],
    ["index not an index name", (p) => (p.index = "config.json")],
    ["shard output ../…", (p) => ((p.shards as Record<string, unknown>[])[0]!.output = "../../outside/x.safetensors")],
  ];
  for (const [label, forge] of forged) {
    it(label, async () => {
      const { work } = fresh();
      try {
        const out = await shardJobs(work);
        for (const name of readdirSync(out).filter((n) => /\.part-\d+-of-\d+\.json$/.test(n))) {
          const part = JSON.parse(readFileSync(join(out, name), "utf8")) as Record<string, unknown>;
          forge(part);
          writeFileSync(join(out, name), JSON.stringify(part));
        }
        const before = snapshot(root);
        for (const force of [[], ["--force"]]) {
          const r = await kquant(cli(), ["merge-index", "out", ...force], { cwd: work });
          expectOrderly(r, label);
          expect(r.code).toBe(2);
          expect(r.stderr).toMatch(/part-\d-of-2\.json: (output index|output shard) .* is not/);
        }
        expect(changes(before, snapshot(root))).toEqual([]);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});

describe("an index's shards", () => {
  it("named outside the index's folder are refused", async () => {
    const { work } = fresh();
    try {
      await writeSafetensors(join(root, "outside", "s.safetensors"), modelTensors());
      const weightMap = Object.fromEntries(modelTensors().map((t) => [t.name, "../outside/s.safetensors"]));
      await writeShardIndex(join(work, "m.safetensors.index.json"), { metadata: { total_size: 0 }, weight_map: weightMap });
      const before = snapshot(root);
      const r = await kquant(cli(), ["quantize", "m.safetensors.index.json", "--int8"], { cwd: work });
      expectOrderly(r, "outside shard");
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/shard "\.\.\/outside\/s\.safetensors" is not a file in/);
      expect(changes(before, snapshot(root))).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("sharing a file name in two subfolders are refused, not written over each other", async () => {
    const { work } = fresh();
    try {
      const tensors = modelTensors();
      const halves = [tensors.slice(0, 3), tensors.slice(3)];
      const weightMap: Record<string, string> = {};
      for (const [i, half] of halves.entries()) {
        mkdirSync(join(work, `d${i}`));
        await writeSafetensors(join(work, `d${i}`, "w.safetensors"), half);
        for (const t of half) weightMap[t.name] = `d${i}/w.safetensors`;
      }
      await writeShardIndex(join(work, "m.safetensors.index.json"), { metadata: { total_size: 0 }, weight_map: weightMap });
      const before = snapshot(root);
      const r = await kquant(cli(), ["quantize", "m.safetensors.index.json", "--int8"], { cwd: work });
      expectOrderly(r, "same shard name");
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/input shards .*d0\/w\.safetensors and .*d1\/w\.safetensors would both be written to/);
      expect(changes(before, snapshot(root))).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
