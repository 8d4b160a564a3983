/**
 * Issue #22 item 7: inputs sized or shaped to break kquant either work or are one line, exit 2.
 * JSON nested 100,000 deep (an index, a config.json), a --shard job number past any integer, a
 * part file claiming 10^20 jobs, a header claiming a 100 GiB tensor (a sparse file). The runs of
 * 150,000 tensors and 200,000 recipe rules take tens of seconds: test/slow/hostile.slow.test.ts.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeModelFolder } from "../layouts/model-folder.js";
import { builtCli, caseDir, changes, expectOrderly, kquant, snapshot } from "./harness.js";

const cli = builtCli();

const DEEP = 100_000;

/** A safetensors file whose header is `header` and whose data is `dataBytes` of holes. */
function sparseSafetensors(path: string, header: Record<string, unknown>, dataBytes: number): void {
  const text = JSON.stringify(header);
  const json = text.padEnd(Math.ceil(text.length / 8) * 8, " ");
  const fd = openSync(path, "w");
  try {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, length);
    writeSync(fd, json);
    if (dataBytes > 0) writeSync(fd, Buffer.alloc(1), 0, 1, 8 + json.length + dataBytes - 1);
  } finally {
    closeSync(fd);
  }
}

/** Runs `args` in a fresh folder set up by `make`; every run ends orderly and changes nothing but `allowed`. */
async function orderly(make: (dir: string) => Promise<void> | void, args: string[], allowed: (path: string) => boolean = () => false) {
  const root = caseDir("crash");
  try {
    await make(root);
    const before = snapshot(root);
    const r = await kquant(cli(), args, { cwd: root, limitMs: 30_000 });
    expectOrderly(r, args.join(" "));
    expect(changes(before, snapshot(root)).filter((p) => !allowed(p))).toEqual([]);
    return r;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe("input-controlled depth and size", () => {
  it("an index.json nested 100,000 deep", async () => {
    const r = await orderly(async (dir) => {
      await writeModelFolder(dir, true);
      const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8")) as Record<string, unknown>;
      const text = JSON.stringify(index).replace(/}$/, `,"deep":${"[".repeat(DEEP)}${"]".repeat(DEEP)}}`);
      writeFileSync(join(dir, "model.safetensors.index.json"), text);
    }, ["inspect", "model.safetensors.index.json"]);
    expect(r.code, r.stderr).toBe(0);
  });

  it("a duplicate key 100,000 deep in an index is still found", async () => {
    const r = await orderly(async (dir) => {
      await writeModelFolder(dir, true);
      const index = readFileSync(join(dir, "model.safetensors.index.json"), "utf8");
      writeFileSync(join(dir, "model.safetensors.index.json"), index.replace(/}\s*$/, `,"deep":${'{"a":'.repeat(DEEP)}{"k":1,"k":2}${"}".repeat(DEEP)}}`));
    }, ["inspect", "model.safetensors.index.json"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/duplicate key "k" in deep\.a\.a/);
  });

  for (const [label, config] of [
    ["an array", `${"[".repeat(DEEP)}${"]".repeat(DEEP)}`],
    ["an object", `${'{"a":'.repeat(DEEP)}1${"}".repeat(DEEP)}`],
  ]) {
    it(`a config.json nested 100,000 deep (${label})`, async () => {
      await orderly(async (dir) => {
        mkdirSync(join(dir, "model"));
        await writeModelFolder(join(dir, "model"));
        writeFileSync(join(dir, "model", "config.json"), config!);
      }, ["quantize", "model", "--int8", "-o", "out", "-q"], (p) => p === "out" || p.startsWith("out/"));
    });
  }

  for (const shard of ["1/99999999999999999999", "99999999999999999999/99999999999999999999", "1/65537"]) {
    it(`--shard ${shard}`, async () => {
      const r = await orderly(async (dir) => void (await writeModelFolder(dir, true)), ["quantize", "model.safetensors.index.json", "--int8", "--shard", shard]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--shard.*expected i\/N with 1 <= i <= N <= 65536/);
    });
  }

  it("a part file claiming 10^20 jobs", async () => {
    const r = await orderly(async (dir) => {
      await writeModelFolder(dir, true);
      mkdirSync(join(dir, "out"));
      const jobs = await kquant(cli(), ["quantize", "model.safetensors.index.json", "--int8", "-o", "out/m.safetensors.index.json", "--shard", "1/2", "-q"], { cwd: dir });
      expect(jobs.code, jobs.stderr).toBe(0);
      const name = readdirSync(join(dir, "out")).find((n) => n.endsWith("part-1-of-2.json"))!;
      const part = JSON.parse(readFileSync(join(dir, "out", name), "utf8")) as Record<string, unknown>;
      writeFileSync(join(dir, "out", name), JSON.stringify({ ...part, parts: 1e20 }));
    }, ["merge-index", "out"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/part 1 of 100000000000000000000 is not a job number/);
  });

  for (const command of [["quantize", "--int8", "-o", "out.safetensors"], ["quantize", "--int8", "-o", "out.safetensors", "--threads", "0"], ["inspect"], ["inspect", "--stats"]]) {
    it(`a header claiming a 100 GiB tensor: ${command.join(" ")}`, async () => {
      const GiB = 1024 ** 3;
      const r = await orderly(
        (dir) => sparseSafetensors(join(dir, "huge.safetensors"), { w: { dtype: "F32", shape: [(100 * GiB) / 4 / 1024, 1024], data_offsets: [0, 100 * GiB] } }, 100 * GiB),
        [command[0]!, "huge.safetensors", ...command.slice(1)],
      );
      if (r.code === 2) expect(r.stderr).toMatch(/huge\.safetensors: tensor "w": 107374182400 bytes/);
    });
  }
});
