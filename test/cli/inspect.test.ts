import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeNpz } from "../../src/formats/npz.js";
import { DEMO, runCli as kquant } from "../support/cli.js";

let dir: string;
const DEMO_NAMES = [
  "model.embed_tokens.weight",
  "model.layers.0.self_attn.q_proj.weight",
  "model.layers.0.self_attn.q_proj.bias",
  "model.layers.0.mlp.down_proj.weight",
  "lm_head.weight",
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kquant-inspect-"));
  for (const [tag, flags] of [["int8", ["--int8"]], ["int4", ["--int4", "--block-size", "32"]], ["float8", ["--float8"]]] as const) {
    const r = await kquant("quantize", DEMO, ...flags, "-o", join(dir, `demo.${tag}.safetensors`), "-q");
    expect(r.code, r.stderr).toBe(0);
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("kquant inspect", () => {
  it("lists every tensor of a plain checkpoint with dtype, shape and totals", async () => {
    const r = await kquant("inspect", DEMO);
    expect(r.code).toBe(0);
    for (const name of DEMO_NAMES) expect(r.stdout).toContain(name);
    expect(r.stdout).toMatch(/model\.embed_tokens\.weight\s+BF16\s+\[256, 64\]\s+32\.0 KiB/);
    // embed + lm_head 256·64 each, 4 attention 64·64, 3 mlp 176·64, 4 vectors of 64 (fixtures/demo/make-demo.py)
    const params = 2 * 256 * 64 + 4 * 64 * 64 + 3 * 176 * 64 + 4 * 64;
    expect(r.stdout).toContain(`Total: 13 stored tensors, ${params.toLocaleString("en-US")} parameters`);
    expect(r.stdout).toContain("model_type=llama");
  });

  it("--json gives the same facts to machines", async () => {
    const r = await kquant("inspect", DEMO, "--json");
    const report = JSON.parse(r.stdout);
    expect(report.format).toBe("safetensors");
    expect(report.totals.tensors).toBe(13);
    expect(report.kquant).toBeNull();
    const q = report.tensors.find((t: { name: string }) => t.name === "model.layers.0.self_attn.q_proj.weight");
    expect(q).toMatchObject({ dtype: "F32", shape: [64, 64], parameters: 4096, bytes: 16384 });
  });

  it("summarises a kquant output: modes, scale shapes, orig_len, bits per weight, compression", async () => {
    const r = await kquant("inspect", join(dir, "demo.int4.safetensors"), "--json");
    expect(r.code).toBe(0);
    const k = JSON.parse(r.stdout).kquant;
    expect(k.modes).toEqual({ int4_grouped: 9, passthrough: 4 });
    const down = k.tensors.find((t: { name: string }) => t.name === "model.layers.0.mlp.down_proj.weight");
    // [64, 176] grouped by 32 along the last axis: 6 groups; packed along it: 88 bytes per row.
    expect(down).toMatchObject({ mode: "int4_grouped", stored_dtype: "I8", stored_shape: [64, 88], scale_shape: [64, 6], zero_shape: [64, 6], orig_len: 176 });
    // (64·88 bytes + 64·6·4 scale + 64·6 zero) · 8 bits / (64·176) weights
    expect(down.bits_per_weight).toBeCloseTo(((64 * 88 + 64 * 6 * 4 + 64 * 6) * 8) / (64 * 176), 10);
    expect(k.compression_ratio).toBeCloseTo(k.source_bytes / k.stored_bytes, 12);
    expect(k.compression_ratio).toBeGreaterThan(3);
    // Parameters come from the source shapes: the packed values hold the weights, scales and zeros none.
    const stored = JSON.parse(r.stdout).tensors as { name: string; parameters: number }[];
    expect(stored.find((t) => t.name === "model.layers.0.self_attn.q_proj.weight")!.parameters).toBe(64 * 64);
    expect(stored.find((t) => t.name === "model.layers.0.self_attn.q_proj.weight_scale")!.parameters).toBe(0);
    expect(JSON.parse(r.stdout).totals.parameters).toBe(2 * 256 * 64 + 4 * 64 * 64 + 3 * 176 * 64 + 4 * 64);
    const text = await kquant("inspect", join(dir, "demo.int4.safetensors"));
    expect(text.stdout).toMatch(/model\.layers\.0\.mlp\.down_proj\.weight\s+int4_grouped\s+BF16\s+\[64, 176\]\s+I8 \[64, 88\]\s+\[64, 6\] \+zero\s+176\s+5\.36/);
    expect(text.stdout).toMatch(/× smaller \(whole file\)/);
    expect(text.stdout).not.toContain('"tensors"'); // the manifest is summarised, not dumped
  });

  it("--filter keeps only matching tensors", async () => {
    const r = await kquant("inspect", join(dir, "demo.int8.safetensors"), "--filter", "*.mlp.*", "--json");
    const report = JSON.parse(r.stdout);
    expect(report.kquant.tensors.map((t: { name: string }) => t.name).sort()).toEqual([
      "model.layers.0.mlp.down_proj.weight",
      "model.layers.0.mlp.gate_proj.weight",
      "model.layers.0.mlp.up_proj.weight",
    ]);
    expect(report.tensors).toHaveLength(6); // values + scale each
    const none = await kquant("inspect", DEMO, "--filter", "nothing.*");
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("no tensor matches nothing.*");
  });

  it("--stats reports min/max/mean/std/zeros and a histogram, float8 decoded", async () => {
    const r = await kquant("inspect", DEMO, "--stats", "--json", "--filter", "model.norm.weight", "--filter", "lm_head.weight");
    const report = JSON.parse(r.stdout);
    const norm = report.tensors.find((t: { name: string }) => t.name === "model.norm.weight").stats;
    expect(norm).toMatchObject({ count: 64, min: 1, max: 1, mean: 1, std: 0, zeros: 0, nan: 0, inf: 0 });
    expect(norm.histogram.counts.reduce((a: number, b: number) => a + b)).toBe(64);
    const head = report.tensors.find((t: { name: string }) => t.name === "lm_head.weight").stats;
    expect(head.std).toBeGreaterThan(0.015); // made with std 0.02
    expect(head.std).toBeLessThan(0.025);
    expect(Math.abs(head.mean)).toBeLessThan(0.002);
    expect(head.histogram.counts.reduce((a: number, b: number) => a + b)).toBe(256 * 64);
    // A gaussian's histogram peaks in the middle bins.
    const c = head.histogram.counts as number[];
    expect(Math.max(c[0]!, c[9]!)).toBeLessThan(Math.max(c[4]!, c[5]!));

    const f8 = await kquant("inspect", join(dir, "demo.float8.safetensors"), "--stats", "--filter", "lm_head.weight");
    expect(f8.stdout).toMatch(/lm_head\.weight\s+-?4\d\d\s+4\d\d/); // e4m3 codes span about ±448 after scaling
    expect(f8.stdout).toMatch(/\|[▁▂▃▄▅▆▇█ ]{10}\|/);
  });

  it("reads .npz archives", async () => {
    const npz = join(dir, "arrays.npz");
    await writeNpz(npz, [
      { name: "a", dtype: "F32", shape: [2, 3], bytes: new Uint8Array(new Float32Array([0, 1, 2, 3, 4, 5]).buffer) },
      { name: "b", dtype: "I32", shape: [4], bytes: new Uint8Array(16) },
    ]);
    const r = await kquant("inspect", npz, "--stats", "--json");
    const report = JSON.parse(r.stdout);
    expect(report.format).toBe("npz");
    expect(report.totals).toEqual({ tensors: 2, parameters: 10, bytes: 40 });
    expect(report.tensors[0].stats).toMatchObject({ min: 0, max: 5, mean: 2.5, zeros: 1 });
    expect(report.tensors[1].stats).toBeUndefined();
  });

  it("an unreadable file is exit 2 with one line naming it", async () => {
    const r = await kquant("inspect", join(dir, "missing.safetensors"));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("missing.safetensors");
  });
});
