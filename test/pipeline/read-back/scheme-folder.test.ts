/**
 * Reading back `kquant quantize --scheme` folders: `dequantize` equals compressed-tensors 0.19.0's
 * decompression bit for bit (one golden case per format and weight dtype here, every case in
 * test/slow/scheme-read-back.slow.test.ts), `inspect` names the scheme and its bits per weight from
 * the descriptor, `verify` checks structure and contents and measures against the original with the
 * preset's floor, and damaged folders are refused in one line naming file, tensor and problem.
 */
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTensors } from "../../../src/formats/open.js";
import { llmcQuantizationConfig, llmcSchemeOfConfig } from "../../../src/layouts/llmc-config.js";
import { schemeNamed } from "../../../src/modes/llmc-schemes.js";
import { LLMC_PRESETS, llmcPreset } from "../../../src/quant/llmc/presets.js";
import { runInspect } from "../../../src/pipeline/read-back/inspect.js";
import { runVerify } from "../../../src/pipeline/read-back/verify.js";
import { runCli, tempDir } from "../../support/cli.js";
import { writeSafetensors, type TestTensor } from "../../support/files.js";
import { checkDecompressCase, DECOMPRESS_CASES, digests, schemeFolder, TINY_LLAMA, tinyLlama } from "../../support/llmc-read-back.js";
import { editTensor } from "../tamper.js";

const { dir, cleanup } = tempDir();
afterAll(cleanup);

/** One preset of each format and arithmetic (int widths that straddle words, ASYM, channel, block, FP4, MX) and the weight dtypes. */
const FAST: readonly [string, string][] = [
  ["W4A16", "bfloat16"], ["W4A16_ASYM", "bfloat16"], ["W8A8", "bfloat16"], ["FP8_DYNAMIC", "bfloat16"], ["FP8_BLOCK", "bfloat16"],
  ["NVFP4A16", "bfloat16"], ["MXFP4A16", "bfloat16"], ["MXFP8A16", "bfloat16"], ["W3A16", "float16"], ["W4A16_ASYM", "float32"],
];

describe("dequantize of a --scheme folder equals compressed-tensors' decompression, bit for bit", () => {
  for (const [preset, dtype] of FAST) {
    const c = DECOMPRESS_CASES.find((x) => x.preset === preset && x.model_dtype === dtype)!;
    it(`${preset} on the ${dtype} tiny Llama (natural dtype ${Object.values(c.tensors)[0]!.dtype}, and --dtype f32)`, () => checkDecompressCase(dir, c));
  }
});

const folders: Record<string, string> = {};
let source = "";
beforeAll(async () => {
  source = await tinyLlama(dir, "bfloat16");
  for (const p of ["W4A16", "NVFP4A16", "MXFP4A16", "MXFP8A16", "FP8_DYNAMIC", "W4A16_ASYM"]) folders[p] = await schemeFolder(dir, p, "bfloat16");
});

/** A copy of a scheme folder to damage. */
function copyOf(preset: string, tag: string): string {
  const to = join(dir, `damaged-${preset}-${tag}`);
  cpSync(folders[preset]!, to, { recursive: true });
  return to;
}

const PARAMETERS = Object.values(TINY_LLAMA.tensors).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);

describe("inspect of a --scheme folder", () => {
  it.each([
    ["W4A16", "pack-quantized", 4.125],
    ["W4A16_ASYM", "pack-quantized", 4.15625],
    ["NVFP4A16", "nvfp4-pack-quantized", 4.5],
    ["MXFP4A16", "mxfp4-pack-quantized", 4.25],
    ["MXFP8A16", "mxfp8-quantized", 8.25],
  ])("%s: %s, %s bits per weight (the descriptor's), every parameter counted once", async (preset, format, bits) => {
    const r = await runInspect(folders[preset]!);
    expect(r.scheme).toMatchObject({ scheme: preset, group: preset, format, ignore: ["lm_head"] });
    expect(r.scheme!.tensors.map((t) => t.name).sort()).toEqual(Object.keys(TINY_LLAMA.tensors).filter((n) => /proj|embed/.test(n)).sort());
    for (const t of r.scheme!.tensors) expect([t.name, t.bits_per_weight]).toEqual([t.name, bits]);
    // the codes hold the weight's parameters, scales and the rest none: the model's count
    expect(r.totals.parameters).toBe(PARAMETERS);
    expect(schemeNamed(preset).bitsPerWeight(128, 128, 16)).toBe(bits);
  });

  it("--json carries the summary; W8A8 and INT8 (the same args) are told apart by the config group's name", async () => {
    const r = await runCli("inspect", folders.NVFP4A16!, "--json");
    const json = JSON.parse(r.stdout);
    expect(json.scheme.tensors.map((t: { bits_per_weight: number }) => t.bits_per_weight)).toEqual(new Array(8).fill(4.5));
    for (const name of ["W8A8", "INT8"]) {
      const qc = llmcQuantizationConfig(llmcPreset(name), name.toLowerCase(), ["lm_head"], true);
      expect(llmcSchemeOfConfig({ quantization_config: qc }, LLMC_PRESETS)?.preset.name).toBe(name);
    }
    // a config that is no preset's is not read as one
    const odd = llmcQuantizationConfig(llmcPreset("W4A16"), "w4a16", [], true) as { config_groups: Record<string, { weights: { group_size: number } }> };
    odd.config_groups.w4a16!.weights.group_size = 64;
    expect(llmcSchemeOfConfig({ quantization_config: odd }, LLMC_PRESETS)).toBeNull();
  });

  it("the CLI names the scheme and shows each weight's float shape and bits", async () => {
    const r = await runCli("inspect", folders.NVFP4A16!, "--filter", "*.q_proj.*");
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toContain("llm-compressor NVFP4A16 folder (nvfp4-pack-quantized: FP4 E2M1, group 16, FP8 E4M3 scales over a float32 global scale): 1 quantized weights");
    expect(r.stdout).toMatch(/model\.layers\.0\.self_attn\.q_proj\.weight_packed\s+U8\s+\[128, 64\]\s+\[128, 128\]\s+4\.50/);
  });
});

describe("verify of a --scheme folder", () => {
  it("a sound folder passes; against the original every weight is measured and above its preset's floor", async () => {
    const plain = await runVerify(folders.MXFP4A16!);
    expect([plain.ok, plain.summary.quantized, plain.tensors.some((t) => t.metrics)]).toEqual([true, 8, false]);
    const r = await runVerify(folders.MXFP4A16!, { against: join(source, "model.safetensors"), histogramBins: 8 });
    expect(r.ok).toBe(true);
    const measured = r.tensors.filter((t) => t.mode === "scheme_MXFP4A16");
    expect(measured).toHaveLength(8);
    for (const t of measured) {
      expect(t.metrics!.sqnrDb).toBeGreaterThan(schemeNamed("MXFP4A16").minSqnrDb);
      expect(t.error_histogram!.counts.reduce((a, b) => a + b, 0)).toBe(t.metrics!.count);
    }
  });

  it("against an original a weight does not come from, the preset's default floor fails it", async () => {
    const reader = await openTensors(join(source, "model.safetensors"));
    const tensors: TestTensor[] = [];
    for (const t of reader.tensors) {
      const b = await reader.read(t.name);
      // o_proj negated (bfloat16: flip each sign bit)
      if (t.name.endsWith("o_proj.weight")) for (let i = 1; i < b.length; i += 2) b[i]! ^= 0x80;
      tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: b });
    }
    await reader.close();
    const other = join(dir, "negated.safetensors");
    await writeSafetensors(other, tensors);
    const r = await runVerify(folders.W4A16!, { against: other });
    expect(r.tensors.filter((t) => !t.ok).map((t) => [t.name, t.gate_failures.join()])).toEqual([
      ["model.layers.0.self_attn.o_proj.weight", expect.stringMatching(/^SQNR -\d+\.\d\d dB < 10, the default floor for scheme_W4A16 \(a threshold flag replaces it\)$/)],
    ]);
    const flag = await runVerify(folders.W4A16!, { against: other, minCosine: -1 });
    expect(flag.ok).toBe(true);
  });

  it("--html writes the report page for a --scheme folder", async () => {
    const html = join(dir, "scheme-report.html");
    const r = await runCli("verify", folders.NVFP4A16!, "--against", join(source, "model.safetensors"), "--html", html);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toMatch(/^ok {3}model\.layers\.0\.mlp\.down_proj\.weight \(scheme_NVFP4A16\)\s+SQNR \d+\.\d+ dB/m);
    expect(readFileSync(html, "utf8")).toContain("scheme_NVFP4A16");
  });
});

describe("a damaged --scheme folder: verify names the tensor and the problem, dequantize refuses in one line", () => {
  const weightScale = "model.layers.0.mlp.up_proj.weight_scale";

  async function refused(folder: string, line: RegExp): Promise<void> {
    const v = await runCli("verify", folder);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(line);
    const out = join(dir, `refused-${Math.random().toString(36).slice(2)}.safetensors`);
    const d = await runCli("dequantize", folder, "-o", out);
    expect(d.code).toBe(2);
    const lines = d.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`model\\.safetensors.*tensor "model\\.layers\\.0\\.mlp\\.up_proj\\.weight"`));
    expect(lines[0]).toMatch(line);
    expect(existsSync(out)).toBe(false);
  }

  it("an E8M0 scale byte 0xff (NaN)", async () => {
    const f = copyOf("MXFP4A16", "e8m0");
    await editTensor(join(f, "model.safetensors"), weightScale, (b) => void (b[3] = 0xff));
    await refused(f, /e8m0-scale tensor "model\.layers\.0\.mlp\.up_proj\.weight_scale": 1 of 1024 E8M0 scale byte\(s\) are 0xff \(NaN\) \(first at index 3\)/);
  });

  it("an NVFP4 FP8 scale that is NaN", async () => {
    const f = copyOf("NVFP4A16", "fp8");
    await editTensor(join(f, "model.safetensors"), weightScale, (b) => void (b[5] = 0x7f));
    await refused(f, /fp8-scale tensor "model\.layers\.0\.mlp\.up_proj\.weight_scale": 1 of 2048 scale value\(s\) are not finite and positive \(first at index 5: NaN\)/);
  });

  it("an FP8 E4M3 NaN code", async () => {
    const f = copyOf("FP8_DYNAMIC", "nan");
    await editTensor(join(f, "model.safetensors"), "model.layers.0.mlp.up_proj.weight", (b) => void (b[9] = 0xff));
    await refused(f, /codes tensor "model\.layers\.0\.mlp\.up_proj\.weight": 1 NaN code\(s\) \(first at index 9: 0xff\)/);
  });

  it("a packed int4 tensor cut short (a column of words missing)", async () => {
    const f = copyOf("W4A16", "short");
    const file = join(f, "model.safetensors");
    const reader = await openTensors(file);
    const tensors: TestTensor[] = [];
    for (const t of reader.tensors) {
      const b = await reader.read(t.name);
      const short = t.name === "model.layers.0.mlp.up_proj.weight_packed";
      tensors.push({ name: t.name, dtype: t.dtype, shape: short ? [t.shape[0]!, t.shape[1]! - 1] : t.shape, data: short ? b.subarray(0, b.length - t.shape[0]! * 4) : b });
    }
    await reader.close();
    await writeSafetensors(file, tensors);
    await refused(f, /packed-codes tensor "model\.layers\.0\.mlp\.up_proj\.weight_packed" is I32 \[256, 15\], W4A16 stores I32 \[256, 16\] for a \[256, 128\] weight/);
  });

  it("a scale of zero (W4A16_ASYM's bfloat16 scales are never zero)", async () => {
    const f = copyOf("W4A16_ASYM", "zero");
    await editTensor(join(f, "model.safetensors"), weightScale, (b) => void b.fill(0, 0, 2));
    await refused(f, /scale tensor "model\.layers\.0\.mlp\.up_proj\.weight_scale": 1 of 256 scale value\(s\) are not finite and positive \(first at index 0: 0\)/);
  });

  it("a tensor the preset does not store beside a quantized weight (a zero point of a symmetric scheme)", async () => {
    const f = copyOf("W4A16", "stray");
    const file = join(f, "model.safetensors");
    const reader = await openTensors(file);
    const tensors: TestTensor[] = [];
    for (const t of reader.tensors) tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await reader.read(t.name) });
    await reader.close();
    tensors.push({ name: "model.layers.0.mlp.up_proj.weight_zero_point", dtype: "I32", shape: [32, 1], data: new Int32Array(32) });
    await writeSafetensors(file, tensors);
    const index = JSON.parse(readFileSync(join(f, "model.safetensors.index.json"), "utf8"));
    index.weight_map["model.layers.0.mlp.up_proj.weight_zero_point"] = "model.safetensors";
    writeFileSync(join(f, "model.safetensors.index.json"), JSON.stringify(index));
    // kquant's folder manifest names both files changed since it wrote them
    const hashed = await runCli("verify", f);
    expect(hashed.code).toBe(1);
    for (const name of ["model.safetensors", "model.safetensors.index.json"]) expect(hashed.stdout).toContain(`FAIL ${join(f, name)}: changed since kquant wrote it`);
    // without it (a folder model_free_ptq wrote itself), the stray tensor is found by its meaning
    rmSync(join(f, "model.safetensors.index.json.json"));
    const v = await runCli("verify", f);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/tensor "model\.layers\.0\.mlp\.up_proj\.weight_zero_point": verify failed for 1 tensor\(s\)/);
    expect(v.stdout).toContain('FAIL model.layers.0.mlp.up_proj.weight_zero_point (passthrough)\n       is stored beside the quantized weight "model.layers.0.mlp.up_proj.weight", but W4A16 stores no weight_zero_point');
    const d = await runCli("dequantize", f, "-o", join(dir, "stray.safetensors"));
    expect([d.code, d.stderr.trim().split("\n").length]).toEqual([2, 1]);
    expect(existsSync(join(dir, "stray.safetensors"))).toBe(false);
  });

  it("a file truncated on disk is refused by the reader, in one line", async () => {
    const f = copyOf("W4A16", "truncated");
    const file = join(f, "model.safetensors");
    truncateSync(file, readFileSync(file).length - 100);
    const d = await runCli("dequantize", f, "-o", join(dir, "never.safetensors"));
    expect(d.code).toBe(2);
    expect(d.stderr.trim().split("\n")).toHaveLength(1);
    expect(d.stderr).toContain("model.safetensors");
  });
});

describe("dequantize MODEL_DIR -o FLOAT_DIR of a --scheme folder", () => {
  it("writes a float model folder: the original's tensor names, config.json without quantization_config, the other files copied", async () => {
    const out = join(dir, "float-folder");
    const r = await runCli("dequantize", folders.W4A16_ASYM!, "-o", out);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(readdirSync(out).sort()).toEqual(["config.json", "generation_config.json", "model.safetensors"]);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(config.quantization_config).toBeUndefined();
    expect(config.hidden_size).toBe(128);
    const back = await digests(join(out, "model.safetensors"));
    expect(Object.keys(back).sort()).toEqual(Object.keys(TINY_LLAMA.tensors).sort());
    const c = DECOMPRESS_CASES.find((x) => x.preset === "W4A16_ASYM" && x.model_dtype === "bfloat16")!;
    for (const [k, t] of Object.entries(c.tensors)) expect([k, back[k]]).toEqual([k, { dtype: t.dtype, sha256: t.sha256 }]);
  });
});
