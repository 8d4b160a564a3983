import { copyFile, mkdtemp, rm, stat, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { editTensor, fixStoredHash } from "../pipeline/tamper.js";
import { DEMO, runCli as kquant } from "../support/cli.js";
import { gaussian, writeSafetensors } from "../support/files.js";

let dir: string;
let int8: string;
let int4: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kquant-verify-cli-"));
  int8 = join(dir, "demo.int8.safetensors");
  int4 = join(dir, "demo.int4.safetensors");
  expect((await kquant("quantize", DEMO, "--int8", "-o", int8, "-q")).code).toBe(0);
  expect((await kquant("quantize", DEMO, "--int4", "-o", int4, "-q")).code).toBe(0);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function damaged(from: string, tag: string): Promise<string> {
  const path = join(dir, `${tag}.safetensors`);
  await copyFile(from, path);
  return path;
}

describe("kquant verify", () => {
  it("passes a fresh output: exit 0, one line per tensor and a summary", async () => {
    const r = await kquant("verify", int8);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok {3}model\.layers\.0\.self_attn\.q_proj\.weight \(int8\)$/m);
    expect(r.stdout).toMatch(/^OK: 13 of 13 tensors pass \(9 quantized, 4 kept\), 22 hashes checked$/m);
  });

  it("--against measures every quantized tensor against the original", async () => {
    const r = await kquant("verify", int8, "--against", DEMO, "--min-sqnr", "30", "--min-cosine", "0.999");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split("\n").filter((l) => /\(int8\)/.test(l));
    expect(lines).toHaveLength(9);
    for (const l of lines) expect(l).toMatch(/SQNR \d+(\.\d+)? dB {2}cos 0\.99\d+ {2}max\|err\| \S+ {2}RMSE \S+/);
    const json = JSON.parse((await kquant("verify", int8, "--against", DEMO, "--json")).stdout);
    expect(json.ok).toBe(true);
    // The summary names the three worst tensors by SQNR, worst first.
    const worst = [...json.tensors]
      .filter((t: { metrics?: unknown }) => t.metrics)
      .sort((a: { metrics: { sqnr_db: number } }, b: { metrics: { sqnr_db: number } }) => a.metrics.sqnr_db - b.metrics.sqnr_db)
      .slice(0, 3)
      .map((t: { name: string }) => t.name);
    expect(r.stdout).toMatch(new RegExp(`^Worst by SQNR: ${worst.map((n) => `${n.replace(/\./g, "\\.")} [\\d.]+ dB`).join(", ")}$`, "m"));
    expect(json.summary.min_sqnr_db).toBeGreaterThan(30);
  });

  it("a flipped byte → exit 1 naming the tensor", async () => {
    const path = await damaged(int8, "flipped");
    await editTensor(path, "model.layers.0.mlp.up_proj.weight", (d) => {
      d[1000] = d[1000]! ^ 0x10;
    });
    const r = await kquant("verify", path);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL model\.layers\.0\.mlp\.up_proj\.weight \(int8\)\n\s+values tensor "model\.layers\.0\.mlp\.up_proj\.weight": xxh3-128 hash differs/m);
    expect(r.stderr).toBe(`kquant: ${path}: tensor "model.layers.0.mlp.up_proj.weight": verify failed for 1 tensor(s) (the report lists each problem)\n`);
  });

  it("a wrong scale whose hash was fixed up → exit 1 naming the tensor and the scale", async () => {
    const path = await damaged(int4, "bad-scale");
    await editTensor(path, "lm_head.weight_scale", (d) => d.writeFloatLE(-0.25, 4 * 3));
    await fixStoredHash(path, "lm_head.weight_scale");
    const r = await kquant("verify", path);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL lm_head.weight (int4)\n       scale "lm_head.weight_scale": 1 of 256 scale value(s) are not finite and positive (first at index 3: -0.25)');
    expect(r.stderr).toMatch(/^kquant: .*bad-scale\.safetensors: tensor "lm_head\.weight": verify failed for 1 tensor\(s\)/);
  });

  it("a truncated file → exit 2 with a clear error", async () => {
    const path = await damaged(int8, "truncated");
    await truncate(path, (await stat(path)).size - 100);
    const r = await kquant("verify", path);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/truncated/);
    expect(r.stderr).toContain(path);
    expect(r.stdout).toBe("");
  });

  it("--min-sqnr 99 → exit 1 naming each tensor below it", async () => {
    const r = await kquant("verify", int4, "--against", DEMO, "--min-sqnr", "99");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/verify failed for 9 tensor\(s\)/);
    for (const name of ["lm_head.weight", "model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight"]) {
      expect(r.stdout).toMatch(new RegExp(`^FAIL ${name.replace(/\./g, "\\.")} \\(int4\\).*\n\\s+SQNR \\d+\\.\\d+ dB < 99$`, "m"));
    }
    expect(r.stdout).toMatch(/^ok {3}model\.norm\.weight/m); // passthrough tensors are exact
    expect(r.stderr.split("\n")).toHaveLength(2); // one line
  });

  it("--against with no threshold applies the default floor: a wrecked int4 tensor fails, a sound one passes", async () => {
    // One 50σ outlier: a single scale for the whole tensor (--per-tensor) rounds every other weight to 0.
    const w = gaussian(64 * 256, 7, 0.02);
    w[300] = 1;
    const src = join(dir, "outlier.safetensors");
    await writeSafetensors(src, [{ name: "mlp.down_proj.weight", dtype: "F32", shape: [64, 256], data: w }], { format: "pt" });
    const wrecked = join(dir, "outlier.tensor.safetensors");
    const sound = join(dir, "outlier.rows.safetensors");
    expect((await kquant("quantize", src, "--int4", "--per-tensor", "-o", wrecked, "-q")).code).toBe(0);
    expect((await kquant("quantize", src, "--int4", "-o", sound, "-q")).code).toBe(0);
    const r = await kquant("verify", wrecked, "--against", src);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toMatch(/^\s+SQNR \d\.\d+ dB < 10, the default floor for int4 \(a threshold flag replaces it\)$/m);
    const ok = await kquant("verify", sound, "--against", src);
    expect(ok.code, ok.stdout).toBe(0);
    // A threshold flag replaces the floor; the JSON names the floor per mode.
    expect((await kquant("verify", wrecked, "--against", src, "--min-sqnr", "-1000")).code).toBe(0);
    const json = JSON.parse((await kquant("verify", sound, "--against", src, "--json")).stdout);
    expect(json.thresholds.min_sqnr_by_mode).toMatchObject({ int8: 30, int4: 10, int4_grouped: 10 });
  });

  it("bad usage is exit 2: thresholds without an original, a non-number threshold, a non-kquant file", async () => {
    expect((await kquant("verify", int8, "--min-cosine", "0.9")).code).toBe(2);
    expect((await kquant("verify", int8, "--against", DEMO, "--min-sqnr", "lots")).code).toBe(2);
    const plain = await kquant("verify", DEMO);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain("no kquant manifest");
  });
});
