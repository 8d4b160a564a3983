/**
 * `kquant quantize MODEL_DIR --mlx MODE` (from source, in-process) on a small generated folder:
 * every tensor it writes is what MLX's kernels (src/quant/mlx, pinned to the real MLX by the golden
 * vectors) make from the source cast to the run's dtype, or that cast; which tensors are quantized
 * follows mlx_lm (2-D X.weight whose last dimension the group divides); config.json carries
 * mlx_lm's `quantization`; refusals are one line, exit 2, nothing written. The real mlx_lm.convert
 * comparison is test/slow/mlx-convert.slow.test.ts.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openTensors } from "../../../src/formats/open.js";
import { mlxAffineDequantize, mlxAffineQuantize } from "../../../src/quant/mlx/affine.js";
import { storeAs, valuesOf, type MlxFloat } from "../../../src/quant/mlx/floats.js";
import { mlxFpDequantize, mlxFpQuantize, type MlxFpMode } from "../../../src/quant/mlx/fp.js";
import { runCli, tempDir } from "../../support/cli.js";
import { fileHash } from "../../support/files.js";
import { CONFIG, modelTensors, writeModelFolder } from "../../layouts/model-folder.js";

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

/** dir/model: the generated folder (layouts/model-folder.ts), in one file or two shards. */
async function sourceFolder(sharded = false): Promise<string> {
  mkdirSync(join(dir, "model"));
  return writeModelFolder(join(dir, "model"), sharded);
}

const ST: Record<MlxFloat, string> = { float32: "F32", float16: "F16", bfloat16: "BF16" };
const buf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

async function expectKernels(out: string, mode: "affine" | MlxFpMode, bits: number, group: number, dtype: MlxFloat, dropped: string[] = []): Promise<void> {
  const r = await openTensors(out);
  try {
    const names = new Set<string>();
    for (const t of modelTensors()) {
      if (dropped.includes(t.name)) continue;
      const x = storeAs(t.data as Float32Array, dtype);
      const read = async (n: string) => buf(await r.read(n));
      const info = (n: string) => r.tensors.find((i) => i.name === n);
      if (!(t.shape.length === 2 && t.shape[1]! % group === 0)) {
        names.add(t.name);
        expect(info(t.name)?.dtype, t.name).toBe(ST[dtype]);
        expect((await read(t.name)).equals(buf(x)), t.name).toBe(true);
        continue;
      }
      const base = t.name.replace(/\.weight$/, "");
      const w = { dtype, shape: t.shape, data: x };
      const q = mode === "affine" ? mlxAffineQuantize(w, bits, group) : mlxFpQuantize(w, mode);
      expect(info(`${base}.weight`)?.dtype).toBe("U32");
      expect((await read(`${base}.weight`)).equals(buf(q.wq)), `${t.name} codes`).toBe(true);
      if ("biases" in q) {
        expect(info(`${base}.scales`)?.dtype).toBe(ST[dtype]);
        expect((await read(`${base}.scales`)).equals(buf(q.scales.data)), `${t.name} scales`).toBe(true);
        expect((await read(`${base}.biases`)).equals(buf(q.biases.data)), `${t.name} biases`).toBe(true);
        names.add(`${base}.biases`);
      } else {
        expect(info(`${base}.scales`)?.dtype).toBe("U8");
        expect((await read(`${base}.scales`)).equals(buf(q.scales)), `${t.name} scales`).toBe(true);
      }
      names.add(`${base}.weight`).add(`${base}.scales`);
    }
    expect(r.tensors.map((t) => t.name).sort()).toEqual([...names].sort());
  } finally {
    await r.close();
  }
  const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, unknown>;
  expect(config.quantization).toEqual({ group_size: group, bits, mode });
  expect(config.quantization_config).toEqual({ group_size: group, bits, mode });
  expect(config.model_type).toBe(CONFIG.model_type);
}

/** model.safetensors.index.json as mlx_lm writes it: the tensors' bytes, the source's parameters, every name → model.safetensors. */
async function expectIndex(out: string): Promise<void> {
  const r = await openTensors(join(out, "model.safetensors"));
  const src = await openTensors(join(dir, "model"));
  try {
    const text = readFileSync(join(out, "model.safetensors.index.json"), "utf8");
    const index = JSON.parse(text);
    expect(index.metadata.total_size).toBe(r.tensors.reduce((n, t) => n + t.byteLength, 0));
    const dropped = (name: string) => !r.tensors.some((t) => t.name === name);
    expect(index.metadata.total_parameters).toBe(src.tensors.filter((t) => !dropped(t.name)).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0));
    expect(Object.entries(index.weight_map)).toEqual(r.tensors.map((t) => [t.name, "model.safetensors"]).sort(([a], [b]) => (a! < b! ? -1 : 1)));
    // json.dump(indent=4): four spaces, no final newline
    expect(text.startsWith('{\n    "metadata": {\n        "total_size": ')).toBe(true);
    expect(text.endsWith("}")).toBe(true);
  } finally {
    await r.close();
    await src.close();
  }
}

describe("kquant quantize MODEL_DIR --mlx MODE", () => {
  it("writes MLX's kernels' bytes in each mode, with mlx_lm's defaults and --dtype, and leaves the input alone", async () => {
    const src = await sourceFolder();
    const before = fileHash(join(src, "model.safetensors"));
    const runs: ["affine" | MlxFpMode, string[], number, number, MlxFloat][] = [
      ["affine", [], 4, 64, "float32"],
      ["affine", ["--bits", "3", "--block-size", "32", "--dtype", "bfloat16"], 3, 32, "bfloat16"],
      ["affine", ["--bits", "8", "--block-size", "128", "--dtype", "float16"], 8, 128, "float16"],
      ["mxfp4", ["--dtype", "bfloat16"], 4, 32, "bfloat16"],
      ["mxfp8", [], 8, 32, "float32"],
      ["nvfp4", ["--dtype", "float16"], 4, 16, "float16"],
    ];
    for (const [mode, flags, bits, group, dtype] of runs) {
      const out = join(dir, `out-${mode}-${bits}-${group}`);
      const res = await runCli("quantize", src, "--mlx", mode, ...flags, "-o", out);
      expect(res.stderr).toBe("");
      expect(res.code).toBe(0);
      expect(res.stdout).toContain(`MLX ${mode}, ${bits} bits, groups of ${group}`);
      await expectKernels(out, mode, bits, group, dtype);
      // The folder's other files come along, byte for byte; the weights, config, index and model card are
      // mlx_lm's (its README replaces the source's), the manifest kquant's.
      expect(readdirSync(out).sort()).toEqual(["README.md", "config.json", "model.safetensors", "model.safetensors.index.json", "model.safetensors.index.json.json", "tokenizer.json"]);
      expect(readFileSync(join(out, "tokenizer.json"), "utf8")).toBe(readFileSync(join(src, "tokenizer.json"), "utf8"));
      expect(readFileSync(join(out, "README.md"), "utf8")).toBe("---\nlanguage: en\nlibrary_name: mlx\npipeline_tag: text-generation\ntags:\n- mlx\n---\n");
      await expectIndex(out);
    }
    expect(fileHash(join(src, "model.safetensors"))).toBe(before);
  });

  it("reads a sharded folder, the dtype from torch_dtype, and drops a tied lm_head as mlx_lm's Llama does", async () => {
    const src = await sourceFolder(true);
    writeFileSync(join(src, "config.json"), JSON.stringify({ ...CONFIG, torch_dtype: "bfloat16", tie_word_embeddings: true }));
    const out = join(dir, "out");
    const res = await runCli("quantize", src, "--mlx", "affine", "--block-size", "32", "-o", out, "--quiet");
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    await expectKernels(out, "affine", 4, 32, "bfloat16", ["lm_head.weight"]);
  });

  it("refuses a width or group MLX refuses, and options --mlx does not take, in one line, exit 2, writing nothing", async () => {
    const src = await sourceFolder();
    const cases: [string[], string][] = [
      [["--mlx", "affine", "--bits", "7"], "kquant: --mlx affine: MLX's affine bit widths are 1, 2, 3, 4, 5, 6 and 8, not 7\n"],
      [["--mlx", "affine", "--block-size", "16"], "kquant: --mlx affine: MLX's affine group sizes are 32, 64 and 128, not 16\n"],
      [["--mlx", "mxfp4", "--block-size", "64"], "kquant: --mlx mxfp4: MLX's mxfp4 takes group size 32 only, not 64\n"],
      [["--mlx", "nvfp4", "--bits", "8"], "kquant: --mlx nvfp4: MLX's nvfp4 takes 4 bits only, not 8\n"],
      [["--mlx", "affine", "--int8"], "kquant: --mlx affine: does not take --int8 (mlx_lm.convert's options are --bits, --block-size and --dtype)\n"],
      [["--int8", "--bits", "4"], "kquant: --bits without --mlx (they set mlx_lm.convert's --q-bits and --dtype for --mlx MODE)\n"],
    ];
    for (const [flags, line] of cases) {
      const out = join(dir, "out");
      const res = await runCli("quantize", src, ...flags, "-o", out);
      expect(res.code, flags.join(" ")).toBe(2);
      expect(res.stderr, flags.join(" ")).toBe(line);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(dir)).toEqual(["model"]);
    }
  });

  it("reads back through kquant dequantize as mx.dequantize computes it, biases and scales consumed", async () => {
    const src = await sourceFolder();
    for (const [mode, flags] of [["affine", ["--bits", "5", "--block-size", "32", "--dtype", "bfloat16"]], ["mxfp8", []], ["nvfp4", ["--dtype", "float16"]]] as const) {
      const out = join(dir, `out-${mode}`);
      expect((await runCli("quantize", src, "--mlx", mode, ...flags, "-o", out, "--quiet")).code).toBe(0);
      const back = join(dir, `back-${mode}.safetensors`);
      const res = await runCli("dequantize", out, "-o", back, "--dtype", "f32");
      expect(res.stderr).toBe("");
      expect(res.code).toBe(0);
      const [q, d] = [await openTensors(out), await openTensors(back)];
      try {
        expect(d.tensors.map((t) => t.name).sort()).toEqual(q.tensors.filter((t) => !/\.(scales|biases)$/.test(t.name)).map((t) => t.name).sort());
        for (const t of d.tensors) {
          const info = q.tensors.find((x) => x.name === t.name)!;
          const got = buf(await d.read(t.name));
          if (info.dtype !== "U32") {
            expect(got.equals(buf(await q.read(t.name))), t.name).toBe(true);
            continue;
          }
          const base = t.name.replace(/\.weight$/, "");
          const wq = new Uint32Array((await q.read(t.name)).slice().buffer);
          const scales = (await q.read(`${base}.scales`)).slice();
          let want: Float32Array;
          if (mode === "affine") {
            const of = async (n: string) => ({ dtype: "bfloat16" as const, shape: [], data: new Uint16Array((await q.read(n)).slice().buffer) });
            const v = mlxAffineDequantize(wq, info.shape, await of(`${base}.scales`), await of(`${base}.biases`), 5, 32);
            want = valuesOf(v.data, "bfloat16");
          } else {
            want = mlxFpDequantize(wq, info.shape, scales, mode, "float32").data as Float32Array;
          }
          expect(t.dtype).toBe("F32");
          expect(t.shape).toEqual(modelTensors().find((m) => m.name === t.name)!.shape);
          expect(got.equals(buf(want)), t.name).toBe(true);
        }
      } finally {
        await q.close();
        await d.close();
      }
    }
  });

  it("dequantize MLX_DIR -o FLOAT_DIR writes a float model folder (config.json without its quantization, the floats of the file run)", async () => {
    const src = await sourceFolder();
    const out = join(dir, "out-mxfp8");
    expect((await runCli("quantize", src, "--mlx", "mxfp8", "-o", out, "--quiet")).code).toBe(0);
    const folder = join(dir, "float");
    const res = await runCli("dequantize", out, "-o", folder);
    expect([res.code, res.stderr]).toEqual([0, ""]);
    const config = JSON.parse(readFileSync(join(folder, "config.json"), "utf8")) as Record<string, unknown>;
    expect([config.quantization, config.quantization_config, config.model_type]).toEqual([undefined, undefined, CONFIG.model_type]);
    const file = join(dir, "float.safetensors");
    expect((await runCli("dequantize", out, "-o", file)).code).toBe(0);
    const [a, b] = [await openTensors(join(folder, "model.safetensors")), await openTensors(file)];
    try {
      expect(a.tensors.map((t) => [t.name, t.dtype])).toEqual(b.tensors.map((t) => [t.name, t.dtype]));
      for (const t of a.tensors) expect(buf(await a.read(t.name)).equals(buf(await b.read(t.name))), t.name).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("is summarised by kquant inspect: mode, group, width, bits per weight (codes plus scales and biases)", async () => {
    const src = await sourceFolder();
    // affine 3 bits + a bfloat16 scale and bias per 32 weights: 3 + 32/32 = 4; nvfp4: 4 + 8/16 = 4.5; mxfp8: 8 + 8/32.
    for (const [mode, flags, bpw] of [["affine", ["--bits", "3", "--block-size", "32", "--dtype", "bfloat16"], 4], ["nvfp4", [], 4.5], ["mxfp8", [], 8.25]] as const) {
      const out = join(dir, `out-${mode}`);
      expect((await runCli("quantize", src, "--mlx", mode, ...flags, "-o", out, "--quiet")).code).toBe(0);
      const res = await runCli("inspect", out, "--json");
      expect(res.code).toBe(0);
      const report = JSON.parse(res.stdout) as { mlx: { quantization: unknown; bits_per_weight: number; tensors: { name: string; shape: number[] }[] }; tensors: { name: string; parameters: number }[] };
      const group = mode === "affine" ? 32 : mode === "nvfp4" ? 16 : 32;
      expect(report.mlx.quantization).toEqual({ group_size: group, bits: mode === "mxfp8" ? 8 : flags.length ? 3 : 4, mode });
      expect(report.mlx.bits_per_weight).toBe(bpw);
      const quantized = modelTensors().filter((t) => t.shape.length === 2 && t.shape[1]! % group === 0);
      expect(report.mlx.tensors.map((t) => [t.name, t.shape])).toEqual(quantized.map((t) => [t.name, t.shape]));
      // Parameters count the float weights, not the packed words; scales hold none.
      const params = report.tensors.reduce((n, t) => n + t.parameters, 0);
      expect(params).toBe(modelTensors().reduce((n, t) => n + t.data.length, 0));
      const text = await runCli("inspect", out);
      expect(text.stdout).toContain(`MLX ${mode} folder: `);
      expect(text.stdout).toContain(`${bpw.toFixed(2)} bits/weight`);
    }
  });

  it("is checked by kquant verify: measured --against the source, and values MLX never writes found", async () => {
    const src = await sourceFolder();
    const out = join(dir, "out");
    expect((await runCli("quantize", src, "--mlx", "affine", "--block-size", "32", "-o", out, "--quiet")).code).toBe(0);
    const res = await runCli("verify", out, "--against", join(src, "model.safetensors"), "--json");
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout) as { ok: boolean; summary: { quantized: number; passthrough: number; min_cosine: number }; tensors: { name: string; mode: string; metrics?: { cosine: number } }[] };
    expect(report.ok).toBe(true);
    // 4 bits in groups of 32: every weight but the 37-wide one is quantized, and close to its source.
    expect(report.summary).toMatchObject({ quantized: 4, passthrough: 2 });
    expect(report.tensors.filter((t) => t.mode === "mlx_affine").every((t) => t.metrics!.cosine > 0.99)).toBe(true);
    // A gate it misses fails the run (exit 1).
    expect((await runCli("verify", out, "--against", join(src, "model.safetensors"), "--min-sqnr", "60", "--json")).code).toBe(1);
    // A NaN scale (an E8M0 255, a float NaN) is found by its meaning, naming the tensor.
    const tamper = async (folder: string, name: string, at: (bytes: Buffer, offset: number) => void) => {
      const file = join(folder, "model.safetensors");
      const bytes = readFileSync(file);
      const n = Number(bytes.readBigUInt64LE(0));
      const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, { data_offsets: [number, number] }>;
      at(bytes, 8 + n + header[name]!.data_offsets[0]);
      writeFileSync(file, bytes);
    };
    await tamper(out, "model.layers.0.mlp.down_proj.scales", (b, o) => b.writeFloatLE(NaN, o));
    const bad = await runCli("verify", out, "--json");
    expect(bad.code).toBe(1);
    const verdict = (JSON.parse(bad.stdout) as { tensors: { name: string; problems: string[] }[] }).tensors.find((t) => t.name === "model.layers.0.mlp.down_proj.weight")!;
    expect(verdict.problems).toEqual(['scales "model.layers.0.mlp.down_proj.scales": 1 of 256 value(s) are not finite and non-zero']);
    const fp = join(dir, "fp");
    expect((await runCli("quantize", src, "--mlx", "mxfp4", "-o", fp, "--quiet")).code).toBe(0);
    expect((await runCli("verify", fp, "--json")).code).toBe(0);
    await tamper(fp, "lm_head.scales", (b, o) => b.writeUInt8(255, o));
    const fpBad = JSON.parse((await runCli("verify", fp, "--json")).stdout) as { tensors: { name: string; problems: string[] }[] };
    expect(fpBad.tensors.find((t) => t.name === "lm_head.weight")!.problems).toEqual(['scales "lm_head.scales": 1 of 96 value(s) are not finite and non-zero']);
  });

  it("writes a manifest of its files' hashes beside the index, which verify checks and --force recognises", async () => {
    const src = await sourceFolder();
    const out = join(dir, "out");
    expect((await runCli("quantize", src, "--mlx", "affine", "--block-size", "32", "-o", out, "--quiet")).code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, "model.safetensors.index.json.json"), "utf8"));
    const files = ["README.md", "config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json"];
    expect(manifest).toMatchObject({ format: "kquant", writer: "mlx_lm.convert", options: { mlx: "affine", bits: 4, group_size: 32 }, files_hash: "xxh3-128" });
    expect(Object.keys(manifest.files)).toEqual(files);
    const ok = JSON.parse((await runCli("verify", out, "--json")).stdout);
    expect([ok.ok, ok.summary.files_checked]).toEqual([true, files]);
    // a folder kquant wrote: --force replaces it (before the manifest, it was refused as not kquant's)
    const again = await runCli("quantize", src, "--mlx", "affine", "--block-size", "32", "-o", out, "--quiet", "--force");
    expect([again.code, again.stderr]).toEqual([0, ""]);
    // a changed file is named; the tensors themselves still pass
    writeFileSync(join(out, "tokenizer.json"), "{}");
    const bad = await runCli("verify", out, "--json");
    expect(bad.code).toBe(1);
    const report = JSON.parse(bad.stdout);
    expect(report.file_problems).toEqual([`${join(out, "tokenizer.json")}: changed since kquant wrote it (its xxh3-128 differs from the manifest's)`]);
    expect(report.tensors.every((t: { ok: boolean }) => t.ok)).toBe(true);
    // without the manifest (mlx_lm.convert's own folder): no file hashes to check
    rmSync(join(out, "model.safetensors.index.json.json"));
    const none = JSON.parse((await runCli("verify", out, "--json")).stdout);
    expect([none.ok, none.summary.files_checked]).toEqual([true, null]);
  });

  it("--dry-run says what it would write through the quantize report, and writes nothing", async () => {
    const src = await sourceFolder();
    const out = join(dir, "out");
    const res = await runCli("quantize", src, "--mlx", "affine", "--block-size", "32", "-o", out, "--dry-run");
    expect([res.code, res.stderr]).toEqual([0, ""]);
    expect(existsSync(out)).toBe(false);
    expect(res.stdout).toMatch(/^Dry run: would write .*out \(nothing written\)\nMLX affine, 4 bits, groups of 32, float tensors in their own dtype, as mlx_lm.convert writes it\n/);
    expect(res.stdout).toMatch(/\nmlx_affine +4 /);
    expect(res.stdout).toMatch(/last dimension 37 is not a multiple of the group size 32 \(mlx_lm leaves it float\)/);
    expect(res.stdout).toContain(`Manifest: would write ${join(out, "model.safetensors.index.json.json")}`);
    const plan = JSON.parse((await runCli("quantize", src, "--mlx", "affine", "--block-size", "32", "-o", out, "--dry-run", "--json")).stdout);
    expect(existsSync(out)).toBe(false);
    expect((await runCli("quantize", src, "--mlx", "affine", "--block-size", "32", "-o", out, "--quiet")).code).toBe(0);
    // the sizes it predicted are the written ones (the index's total_size)
    const index = JSON.parse(readFileSync(join(out, "model.safetensors.index.json"), "utf8"));
    expect(plan.bytes_after).toBe(index.metadata.total_size);
    expect([plan.quantized, plan.kept, plan.dropped]).toEqual([4, 2, 0]);
    expect(plan.report.quantized.map((q: { name: string }) => q.name).sort()).toEqual(Object.keys(index.weight_map).filter((n) => n.endsWith(".scales")).map((n) => n.replace(/scales$/, "weight")));
  });

  it("writes config.json's content as mlx_lm does: generation_config.json's eos_token_id, no _name_or_path", async () => {
    const src = await sourceFolder();
    writeFileSync(join(src, "config.json"), JSON.stringify({ ...CONFIG, _name_or_path: "org/model", eos_token_id: 2 }));
    writeFileSync(join(src, "generation_config.json"), JSON.stringify({ eos_token_id: [2, 5], bos_token_id: 1 }));
    const out = join(dir, "out");
    expect((await runCli("quantize", src, "--mlx", "mxfp4", "-o", out, "--quiet")).code).toBe(0);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(config).toEqual({ ...CONFIG, eos_token_id: [2, 5], quantization: { group_size: 32, bits: 4, mode: "mxfp4" }, quantization_config: { group_size: 32, bits: 4, mode: "mxfp4" } });
    // a falsy eos_token_id (Python's truth) leaves the config's
    writeFileSync(join(src, "generation_config.json"), JSON.stringify({ eos_token_id: [] }));
    expect((await runCli("quantize", src, "--mlx", "mxfp4", "-o", out, "--quiet", "--force")).code).toBe(0);
    expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).eos_token_id).toBe(2);
  });
});
