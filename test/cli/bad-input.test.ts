/**
 * The malformed-file corpus (fixtures/bad/files, made by fixtures/bad/make-corpus.mjs) through the
 * real CLI: each file gives exit 2, one line naming the file and what is wrong, and no output.
 */
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, tempDir } from "../support/cli.js";
import { fileHash, listDir } from "../support/files.js";

const corpus = fileURLToPath(new URL("../../fixtures/bad/files/", import.meta.url));
const expectations = JSON.parse(readFileSync(join(corpus, "expectations.json"), "utf8")) as Record<string, string>;
// Sharded cases refer to shard files beside them, so those run from the corpus folder itself.
const standalone = Object.entries(expectations).filter(([file]) => !file.startsWith("sharded-"));
const sharded = Object.entries(expectations).filter(([file]) => file.startsWith("sharded-"));

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

describe("kquant quantize on the malformed-file corpus", () => {
  it.each(standalone)("%s → exit 2, one clear line, nothing written", async (file, expected) => {
    const input = join(dir, file);
    copyFileSync(join(corpus, file), input);
    const before = fileHash(input);
    // A recipe quantizes rank-1 tensors too, so the small corpus arrays are read (a run with nothing
    // to quantize would stop before reading them).
    const recipe = join(dir, "all.json");
    writeFileSync(recipe, '{"rules":[{"match":"*","mode":"int8"}]}');
    const res = await runCli("quantize", input, "--recipe", recipe, "-o", join(dir, "out.safetensors"));
    expect(res.code).toBe(2);
    expect(res.stdout).toBe("");
    expect(res.stderr.split("\n")).toHaveLength(2); // one line and its newline
    expect(res.stderr).toContain(input);
    expect(res.stderr).toContain(expected);
    expect(listDir(dir)).toEqual([file, "all.json"].sort());
    expect(fileHash(input)).toBe(before);
  });

  it.each(sharded)("%s → exit 2 naming the problem", async (file, expected) => {
    const before = readdirSync(corpus).sort();
    const res = await runCli("quantize", join(corpus, file), "--int8", "-o", join(dir, "out.safetensors.index.json"));
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(expected);
    expect(listDir(dir)).toEqual([]);
    expect(readdirSync(corpus).sort()).toEqual(before);
  });
});
