import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeShardedCheckpoint } from "../pipeline/checkpoints.js";
import { runCli, tempDir } from "../support/cli.js";

let dir: string;
let cleanup: () => void;
let input: string;
beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  input = await writeShardedCheckpoint(dir);
});
afterEach(() => cleanup());

const INDEX = "model.int4.safetensors.index.json";
const hashes = (folder: string) =>
  Object.fromEntries(readdirSync(folder).sort().map((n) => [n, createHash("sha256").update(readFileSync(join(folder, n))).digest("hex")]));

async function ok(...args: string[]) {
  const res = await runCli(...args);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  return res;
}

/** Runs `--shard i/N` for every i into `out`, as N CI jobs would, each into its own folder, then gathers them. */
async function shardedRun(out: string, count: number, flags: string[], index = INDEX) {
  mkdirSync(out);
  for (let i = 1; i <= count; i++) {
    const job = join(dir, `job${i}`);
    mkdirSync(job);
    await ok("quantize", input, ...flags, "--shard", `${i}/${count}`, "-o", join(job, index), "--quiet");
    for (const f of readdirSync(job)) renameSync(join(job, f), join(out, f));
  }
}

describe("kquant quantize --shard + kquant merge-index", () => {
  it("2 shards × 2 jobs, merged, give the files of one unsharded run", async () => {
    const whole = join(dir, "whole");
    mkdirSync(whole);
    await ok("quantize", input, "--int4", "--block-size", "64", "-o", join(whole, INDEX), "--quiet");

    const parts = join(dir, "parts");
    await shardedRun(parts, 2, ["--int4", "--block-size", "64"]);
    expect(readdirSync(parts).sort()).toEqual([
      "model-00001-of-00002.int4-g64.safetensors",
      "model-00002-of-00002.int4-g64.safetensors",
      `${INDEX}.part-1-of-2.json`,
      `${INDEX}.part-2-of-2.json`,
    ]);
    const res = await ok("merge-index", parts, "--json");
    expect(JSON.parse(res.stdout)).toMatchObject({ shards: 2, tensors: 6, index: join(parts, INDEX) });
    // It says that it leaves the part files, and does.
    const again = await ok("merge-index", parts, "--force");
    expect(again.stdout).toContain("Left the 2 part files as they are (nothing reads them now; delete them once the output is verified)\n");
    expect(readdirSync(parts).filter((f) => f.includes(".part-"))).toHaveLength(2);
    for (const f of readdirSync(parts).filter((f) => f.includes(".part-"))) rmSync(join(parts, f));
    expect(hashes(parts)).toEqual(hashes(whole));
  });

  it("more jobs than shards: the extra job writes an empty part and the merge still matches", async () => {
    const whole = join(dir, "whole");
    mkdirSync(whole);
    await ok("quantize", input, "--int8", "-o", join(whole, "model.int8.safetensors.index.json"), "--quiet");
    const parts = join(dir, "parts");
    mkdirSync(parts);
    for (let i = 1; i <= 3; i++) {
      await ok("quantize", input, "--int8", "--shard", `${i}/3`, "-o", join(parts, "model.int8.safetensors.index.json"), "--quiet");
    }
    const part3 = JSON.parse(readFileSync(join(parts, "model.int8.safetensors.index.json.part-3-of-3.json"), "utf8"));
    expect(part3.shards).toEqual([]);
    await ok("merge-index", ...readdirSync(parts).filter((f) => f.includes(".part-")).map((f) => join(parts, f)));
    for (const f of readdirSync(parts).filter((f) => f.includes(".part-"))) rmSync(join(parts, f));
    expect(hashes(parts)).toEqual(hashes(whole));
  });

  it("refuses a missing part, a part twice, parts with different options, and --shard on a single file", async () => {
    const parts = join(dir, "parts");
    await shardedRun(parts, 2, ["--int8"], "model.int8.safetensors.index.json");
    const p1 = join(parts, "model.int8.safetensors.index.json.part-1-of-2.json");
    const p2 = join(parts, "model.int8.safetensors.index.json.part-2-of-2.json");

    let res = await runCli("merge-index", p1);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/parts 2 of 2 are missing/);

    const dup = join(parts, "copy.safetensors.index.json.part-1-of-2.json");
    copyFileSync(p1, dup);
    res = await runCli("merge-index", p1, p2, dup);
    expect(res.stderr).toMatch(/part 1 of 2 is also in/);
    rmSync(dup);

    const other = JSON.parse(readFileSync(p2, "utf8"));
    other.manifest.options = { ...other.manifest.options, axis: 0 };
    writeFileSync(p2, JSON.stringify(other));
    res = await runCli("merge-index", parts);
    expect(res.stderr).toMatch(/options .* differs from/);
    expect(readdirSync(parts).some((f) => f.endsWith(".index.json"))).toBe(false);

    res = await runCli("quantize", join(dir, "model-00001-of-00002.safetensors"), "--int8", "--shard", "1/2");
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--shard needs a sharded input/);
    res = await runCli("quantize", input, "--int8", "--shard", "3/2");
    expect(res.code).toBe(2);
  });
});
