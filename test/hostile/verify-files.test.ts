/**
 * Issue #22 item 8a: verify vouches for every file the run wrote besides the weights. The manifest
 * in __metadata__ records the hashes of the sharded index and of a layout's config.json (`files`);
 * editing either fails plain verify (exit 1) naming the file; an untouched output passes and says
 * which files it checked; a manifest without `files` (written before) still verifies, with
 * `files_checked: null` in the JSON.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeModelFolder } from "../layouts/model-folder.js";
import { builtCli, caseDir, expectOrderly, kquant } from "./harness.js";

let root: string;
const cli = builtCli(async (built) => {
  root = caseDir("verify-files");
  mkdirSync(join(root, "model"));
  await writeModelFolder(join(root, "model"), true);
  const r = await kquant(built, ["quantize", "model", "--int4", "--block-size", "32", "--layout", "mlx", "-o", "q", "-q"], { cwd: root });
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const INDEX = "model.safetensors.index.json";

/** A copy of the quantized folder, changed by `spoil`; returns its index's path (relative to root). */
function spoiled(name: string, spoil: (dir: string) => void): string {
  const dir = join(root, name);
  mkdirSync(dir);
  for (const f of readdirSync(join(root, "q"))) writeFileSync(join(dir, f), readFileSync(join(root, "q", f)));
  spoil(dir);
  return `${name}/${INDEX}`;
}

async function verifyJson(input: string) {
  const r = await kquant(cli(), ["verify", input, "--json"], { cwd: root });
  expectOrderly(r, "verify");
  return { code: r.code, report: JSON.parse(r.stdout) as { ok: boolean; file_problems: string[]; summary: { files_checked: string[] | null } } };
}

describe("verify checks the other files the run wrote", () => {
  it("an untouched layout folder passes, its index and config.json checked", async () => {
    const { code, report } = await verifyJson(`q/${INDEX}`);
    expect(report.file_problems).toEqual([]);
    expect(code).toBe(0);
    expect([...report.summary.files_checked!].sort()).toEqual(["config.json", INDEX]);
  });

  it("an edited config.json fails, naming it", async () => {
    const input = spoiled("config", (dir) => {
      const path = join(dir, "config.json");
      const config = JSON.parse(readFileSync(path, "utf8")) as { quantization: { group_size: number } };
      config.quantization.group_size = 16;
      writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);
    });
    const r = await kquant(cli(), ["verify", input], { cwd: root });
    expectOrderly(r, "verify");
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL config\/config\.json: changed since kquant wrote it/);
  });

  it("an edited index fails, naming it", async () => {
    const input = spoiled("index", (dir) => {
      const path = join(dir, INDEX);
      const index = JSON.parse(readFileSync(path, "utf8")) as { metadata: { total_size: number } };
      index.metadata.total_size += 1;
      writeFileSync(path, `${JSON.stringify(index, null, 2)}\n`);
    });
    const { code, report } = await verifyJson(input);
    expect(code).toBe(1);
    expect(report.file_problems.join("\n")).toMatch(/index\/model\.safetensors\.index\.json: changed since kquant wrote it/);
  });

  it("config.json removed fails, naming it", async () => {
    const input = spoiled("noconfig", (dir) => rmSync(join(dir, "config.json")));
    const { code, report } = await verifyJson(input);
    expect(code).toBe(1);
    expect(report.file_problems.join("\n")).toMatch(/noconfig\/config\.json: written by kquant with the weights but cannot be read/);
  });
});
