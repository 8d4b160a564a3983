import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { xxhash128 } from "hash-wasm";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import { writeNpy } from "../../src/formats/npy.js";
import { writeNpz } from "../../src/formats/npz.js";
import { writeShardIndex } from "../../src/formats/safetensors-writer.js";
import { manifestFromMetadata, type Manifest } from "../../src/pipeline/manifest.js";
import { DEMO, runCli, tempDir } from "../support/cli.js";
import { bytes, fileHash, gaussian, listDir, writeSafetensors } from "../support/files.js";

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());


async function readAll(path: string) {
  const r = await openTensors(path);
  try {
    const out: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }> = {};
    for (const t of r.tensors) out[t.name] = { dtype: t.dtype, shape: t.shape, bytes: await r.read(t.name) };
    return { tensors: out, metadata: r.metadata };
  } finally {
    await r.close();
  }
}

describe("kquant quantize on the demo checkpoint", () => {
  it("writes packed int4 with a manifest that matches the stored bytes, and leaves the input alone", async () => {
    const input = join(dir, "tiny.safetensors");
    copyFileSync(DEMO, input);
    const before = fileHash(input);
    const res = await runCli("quantize", input, "--int4", "--axis", "0");
    // The demo is a PyTorch-layout checkpoint (format: pt): axis 0 is per input column there, and kquant says so.
    expect(res.stderr).toBe(
      "kquant: warning: --int4: axis 0 on a PyTorch-layout checkpoint gives one scale per input column (Linear weights are [out, in] here; Keras's axis 0 is per output channel for its [in, out] kernels); --axis -1 is per output channel\n",
    );
    expect(res.code).toBe(0);
    const output = join(dir, "tiny.int4-axis0.safetensors");
    expect(res.stdout).toContain(`→ ${output}`);
    expect(listDir(dir)).toEqual(["tiny.int4-axis0.safetensors", "tiny.int4-axis0.safetensors.json", "tiny.safetensors"]);
    expect(fileHash(input)).toBe(before);

    const { tensors, metadata } = await readAll(output);
    const manifest = manifestFromMetadata(metadata)!;
    expect(JSON.parse(readFileSync(`${output}.json`, "utf8"))).toEqual(manifest);
    expect(manifest.source.metadata).toEqual({ format: "pt", model_type: "llama" });
    expect(metadata?.format).toBe("pt");

    const q = manifest.tensors["model.layers.0.mlp.gate_proj.weight"]!;
    expect(q).toMatchObject({
      mode: "int4",
      source_dtype: "BF16",
      shape: [176, 64],
      axis: 0,
      pack_axis: 0,
      orig_len: 176,
      value_range: [-8, 7],
      epsilon: 1e-7,
      scale: "model.layers.0.mlp.gate_proj.weight_scale",
      dequantize: "q = unpack_int4(values, orig_len=176, axis=0); q / scale",
    });
    expect(tensors["model.layers.0.mlp.gate_proj.weight"]).toMatchObject({ dtype: "I8", shape: [88, 64] });
    expect(tensors["model.layers.0.mlp.gate_proj.weight_scale"]).toMatchObject({ dtype: "F32", shape: [1, 64] });
    expect(manifest.tensors["model.norm.weight"]).toMatchObject({ mode: "passthrough" });

    // Every hash in the manifest is the hash of what is stored, and of the source tensor.
    const source = await readAll(input);
    for (const [name, rec] of Object.entries(manifest.tensors)) {
      expect(rec.hash).toBe("xxh3-128");
      expect(rec.hashes!.source).toBe(await xxhash128(source.tensors[name]!.bytes));
      for (const [stored, hash] of Object.entries(rec.hashes!.stored)) expect(hash).toBe(await xxhash128(tensors[stored]!.bytes));
    }
  });

  it("is deterministic: the same input and options give byte-identical files (--fsync changes durability, not bytes)", async () => {
    const a = join(dir, "a.safetensors");
    const b = join(dir, "b.safetensors");
    const probe = await open(join(dir, "probe"), "w");
    const sync = vi.spyOn(Object.getPrototypeOf(probe) as { sync: () => Promise<void> }, "sync");
    await probe.close();
    try {
      for (const mode of [["--int8"], ["--int4", "--block-size", "32"], ["--float8", "e5m2"]]) {
        expect((await runCli("quantize", DEMO, ...mode, "-o", a, "--force", "-q")).code).toBe(0);
        expect(sync).not.toHaveBeenCalled();
        expect((await runCli("quantize", DEMO, ...mode, "-o", b, "--force", "-q", "--fsync")).code).toBe(0);
        // The output and the manifest, each with its folder.
        expect(sync).toHaveBeenCalledTimes(4);
        sync.mockClear();
        expect(fileHash(a)).toBe(fileHash(b));
        expect(fileHash(`${a}.json`)).toBe(fileHash(`${b}.json`));
      }
    } finally {
      sync.mockRestore();
    }
  });

  it("refuses to overwrite an existing output without --force", async () => {
    const out = join(dir, "out.safetensors");
    writeFileSync(out, "precious");
    const res = await runCli("quantize", DEMO, "--int8", "-o", out);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(`kquant: ${out}: output already exists (use --force to overwrite it)\n`);
    expect(readFileSync(out, "utf8")).toBe("precious");
    expect((await runCli("quantize", DEMO, "--int8", "-o", out, "--force", "-q")).code).toBe(0);
    expect(readFileSync(out).subarray(8, 9).toString()).toBe("{");
  });

  it("creates the missing parent folders of -o (as mlx_lm.convert does), and removes them again when the run fails", async () => {
    const out = join(dir, "new", "nested", "out.safetensors");
    const res = await runCli("quantize", DEMO, "--int8", "-o", out, "-q");
    expect(res.code, res.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
    // The input is checked after the folders are made: a missing one fails the run, which removes them.
    const failed = await runCli("quantize", join(dir, "missing.safetensors"), "--int8", "-o", join(dir, "made", "deeper", "x.safetensors"), "-q");
    expect(failed.code).toBe(2);
    expect(existsSync(join(dir, "made"))).toBe(false);
    const deq = await runCli("dequantize", out, "-o", join(dir, "deq", "d.safetensors"), "-q");
    expect(deq.code, deq.stderr).toBe(0);
    expect(existsSync(join(dir, "deq", "d.safetensors"))).toBe(true);
  });

  it("never writes over its input, even with --force", async () => {
    const input = join(dir, "m.safetensors");
    copyFileSync(DEMO, input);
    const res = await runCli("quantize", input, "--int8", "-o", input, "--force");
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("the output would overwrite the input");
    expect(fileHash(input)).toBe(fileHash(DEMO));
  });

  it("--dry-run --json reports the plan and sizes and writes nothing", async () => {
    const out = join(dir, "out.safetensors");
    const res = await runCli("quantize", DEMO, "--int8", "--dry-run", "--json", "-o", out);
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout);
    expect(report.dry_run).toBe(true);
    expect(report.quantized.map((q: { name: string }) => q.name)).toContain("lm_head.weight");
    expect(report.skipped.map((s: { name: string }) => s.name).sort()).toEqual([
      "model.layers.0.input_layernorm.weight",
      "model.layers.0.post_attention_layernorm.weight",
      "model.layers.0.self_attn.q_proj.bias",
      "model.norm.weight",
    ]);
    const lm = report.quantized.find((q: { name: string }) => q.name === "lm_head.weight");
    expect(lm).toMatchObject({ bytes_before: 256 * 64 * 4, bytes_after: 256 * 64 + 256 * 4 });
    expect(report.summary).toMatchObject({ tensors: 13, quantized: 9, passthrough: 4, passthrough_reasons: [{ reason: "rank 1 (biases and norms stay as they are)", tensors: 4 }] });
    // int8: 8 bits a value plus the float32 scales, per source parameter.
    const q = report.quantized as { shape: number[]; bytes_after: number }[];
    const params = q.reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0);
    expect(report.summary.by_mode.int8.parameters).toBe(params);
    expect(report.summary.by_mode.int8.bits_per_weight).toBeCloseTo((q.reduce((n, e) => n + e.bytes_after, 0) * 8) / params, 9);
    expect(report.summary.by_mode.int8.bits_per_weight).toBeGreaterThan(8);
    expect(report.summary.bits_per_weight).toBeCloseTo((report.bytes_after * 8) / report.summary.parameters, 9);
    expect(listDir(dir)).toEqual([]);
  });

  it("the text report: totals by mode and reasons grouped, the output path (dry run too); every tensor only with --verbose", async () => {
    const out = join(dir, "out.safetensors");
    const dry = await runCli("quantize", DEMO, "--int4", "--dry-run", "-o", out);
    expect(dry.code).toBe(0);
    expect(dry.stdout.split("\n")[0]).toBe(`Dry run: would write ${out} (nothing written)`);
    expect(dry.stdout).toMatch(/^int4 +9 +[\d.]+ K +4\.\d\d /m);
    expect(dry.stdout).toMatch(/^ +4 × rank 1 \(biases and norms stay as they are\)$/m);
    expect(dry.stdout).toMatch(/^Total: 13 tensors, .* bits\/weight$/m);
    expect(dry.stdout).not.toContain("lm_head.weight");
    const verbose = await runCli("quantize", DEMO, "--int4", "--dry-run", "--verbose", "-o", out);
    expect(verbose.stdout).toContain("lm_head.weight");
    expect(verbose.stdout).toContain("model.norm.weight");
    expect(listDir(dir)).toEqual([]);
  });
});

describe("kquant quantize on bad input", () => {
  it("stops on NaN/Inf naming the tensor and the count, leaving no output and no temp file", async () => {
    const input = join(dir, "nan.safetensors");
    const data = gaussian(64);
    data[3] = NaN;
    data[10] = Infinity;
    data[11] = -Infinity;
    await writeSafetensors(input, [
      { name: "ok.weight", dtype: "F32", shape: [8, 8], data: gaussian(64, 2) },
      { name: "bad.weight", dtype: "F32", shape: [8, 8], data },
    ]);
    const res = await runCli("quantize", input, "--int8", "-q");
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      `kquant: ${input}: tensor "bad.weight": 3 of 64 values are NaN or Inf; nothing was written (--allow-nonfinite quantizes it anyway)\n`,
    );
    expect(listDir(dir)).toEqual(["nan.safetensors"]);
    // Allowed: on tensorflow (the default) NaN would reach an integer cast whose result depends
    // on the element's position, which kquant refuses; on jax it is written.
    const onTensorflow = await runCli("quantize", input, "--int8", "-q", "--allow-nonfinite");
    expect(onTensorflow.code).toBe(2);
    expect(onTensorflow.stderr.trim().split("\n")).toHaveLength(1);
    expect(onTensorflow.stderr).toContain("a NaN reaches the int cast, which on this backend depends on its position (torch, jax and numpy cast NaN to 0)");
    expect(listDir(dir)).toEqual(["nan.safetensors"]);
    const forced = await runCli("quantize", input, "--int8", "-q", "--allow-nonfinite", "--keras-backend", "jax");
    expect(forced.code).toBe(0);
  });

  it("keeps a tensor the mode does not suit as it is, saying why in the report and the manifest; --strict refuses", async () => {
    const input = join(dir, "m.safetensors");
    await writeSafetensors(input, [
      { name: "conv.weight", dtype: "F32", shape: [2, 2, 4], data: gaussian(16) },
      { name: "fc.weight", dtype: "F32", shape: [4, 4], data: gaussian(16) },
      { name: "conv2.weight", dtype: "F32", shape: [2, 2, 2, 2], data: gaussian(16) },
    ]);
    const strict = await runCli("quantize", input, "--int4", "--block-size", "2", "--strict");
    expect(strict.code).toBe(2);
    expect(strict.stderr).toBe(
      `kquant: ${input}: tensor "conv.weight": cannot take --int4: grouped int4 needs a 2-D tensor, got shape [2,2,4] (+1 more) (without --strict they are kept as they are)\n`,
    );
    expect(listDir(dir)).toEqual(["m.safetensors"]);

    const res = await runCli("quantize", input, "--int4", "--block-size", "2", "--json");
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout);
    expect(report.quantized.map((q: { name: string }) => q.name)).toEqual(["fc.weight"]);
    expect(report.skipped.map((s: { name: string; reason: string }) => [s.name, s.reason])).toEqual([
      ["conv.weight", "cannot take --int4: grouped int4 needs a 2-D tensor, got shape [2,2,4]"],
      ["conv2.weight", "cannot take --int4: grouped int4 needs a 2-D tensor, got shape [2,2,2,2]"],
    ]);
    expect(report.summary.passthrough_reasons).toEqual([{ reason: "cannot take --int4: grouped int4 needs a 2-D tensor", tensors: 2 }]);
    const manifest = JSON.parse(readFileSync(`${report.output}.json`, "utf8"));
    expect(manifest.tensors["conv.weight"]).toMatchObject({ mode: "passthrough", reason: "cannot take --int4: grouped int4 needs a 2-D tensor, got shape [2,2,4]" });
  });

  it("a run that would quantize nothing exits 2 and writes nothing", async () => {
    const res = await runCli("quantize", DEMO, "--int8", "--include", "nope.*", "-o", join(dir, "none.safetensors"));
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^kquant: .*tiny-llama\.safetensors: nothing to quantize, nothing written; 13 of 13 tensors: no rule matched \(kquant inspect lists the names\)\n$/);
    expect(res.stderr.split("\n")).toHaveLength(2);
    expect(listDir(dir)).toEqual([]);
  });

  it("default names carry every option that changes the bytes; --float8 takes Keras's format names", async () => {
    const input = join(dir, "m.safetensors");
    copyFileSync(DEMO, input);
    const runs: [string[], string][] = [
      [["--int4"], "m.int4.safetensors"],
      [["--int4", "--block-size", "32"], "m.int4-g32.safetensors"],
      [["--int4", "--block-size", "32", "--axis", "0"], "m.int4-g32-axis0.safetensors"],
      [["--float8"], "m.float8-e4m3fn.safetensors"],
      [["--float8", "e5m2"], "m.float8-e5m2.safetensors"],
      [["--int8", "--per-tensor"], "m.int8-tensor.safetensors"],
      [["--int8", "--value-range", "-7,7"], "m.int8-r-7_7.safetensors"],
    ];
    for (const [flags, name] of runs) {
      const r = await runCli("quantize", input, ...flags, "--dry-run", "--json");
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).output).toBe(join(dir, name));
    }
    const include = JSON.parse((await runCli("quantize", input, "--int8", "--include", "lm_head.*", "--dry-run", "--json")).stdout).output;
    expect(include).toMatch(/m\.int8-sel[0-9a-f]{6}\.safetensors$/);
    for (const name of ["e4m3fn", "float8_e4m3fn", "float8_e5m2"]) {
      const r = await runCli("quantize", input, "--float8", name, "-q", "--force");
      expect(r.code, r.stderr).toBe(0);
    }
    const written = listDir(dir).filter((f) => f.endsWith(".safetensors"));
    expect(written).toEqual(["m.float8-e4m3fn.safetensors", "m.float8-e5m2.safetensors", "m.safetensors"]);
    const e4m3 = manifestFromMetadata((await readAll(join(dir, "m.float8-e4m3fn.safetensors"))).metadata)!;
    expect(e4m3.tensors["lm_head.weight"]!.mode).toBe("float8_e4m3fn");
  });

  it("exits 2 with one line for bad usage", async () => {
    const none = await runCli("quantize", DEMO);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe("kquant: no mode given (choose --int8, --int4, --float8 or --recipe FILE; see kquant quantize --help)\n");
    const two = await runCli("quantize", DEMO, "--int8", "--int4");
    expect(two.code).toBe(2);
    const unknown = await runCli("quantize", DEMO, "--int3");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^kquant: unknown option '--int3'.* \(see kquant quantize --help\)\n$/);
    const zero = await runCli("quantize", DEMO, "--int4", "--block-size", "0");
    expect(zero.code).toBe(2);
    expect(zero.stderr).toBe("kquant: --block-size 0: block size 0 is not a positive integer (see kquant quantize --help)\n");
    const notInt = await runCli("quantize", DEMO, "--int4", "--block-size", "x");
    expect(notInt.stderr).toBe("kquant: option '--block-size <n>' argument 'x' is invalid: not an integer (see kquant quantize --help)\n");
    const noValue = await runCli("quantize", DEMO, "--int4", "--block-size");
    expect(noValue.code).toBe(2);
    expect(noValue.stderr).toBe("kquant: option '--block-size <n>' argument missing (see kquant quantize --help)\n");
    const folder = await runCli("quantize", dir, "--int8");
    // A folder is a model folder: without config.json it says so.
    expect(folder.stderr).toBe(`kquant: ${join(dir, "config.json")}: a model folder needs config.json; there is none\n`);
    writeFileSync(join(dir, "model.pt"), "");
    const pt = await runCli("quantize", join(dir, "model.pt"), "--int8");
    expect(pt.code).toBe(2);
    expect(pt.stderr).toMatch(/model\.pt: not a format kquant reads \(.*PyTorch pickles.*\) \(save it as \.safetensors first; kquant reads \.safetensors, \.safetensors\.index\.json, \.npy, \.npz and model folders .*\)\n$/);
    const missing = await runCli("quantize", join(dir, "nope.safetensors"), "--int8");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.safetensors");
  });
});

describe("kquant quantize inputs", () => {
  it("reads .npy and .npz, naming the output after the input stem", async () => {
    const w = gaussian(32 * 16, 5);
    await writeNpy(join(dir, "dense.npy"), { dtype: "F32", shape: [32, 16], bytes: bytes(w) });
    await writeNpz(join(dir, "layers.npz"), [
      { name: "a", dtype: "F32", shape: [32, 16], bytes: bytes(w) },
      { name: "b", dtype: "F32", shape: [16], bytes: bytes(gaussian(16)) },
    ], { compress: true });
    expect((await runCli("quantize", join(dir, "dense.npy"), "--int8", "-q")).code).toBe(0);
    expect((await runCli("quantize", join(dir, "layers.npz"), "--int8", "-q")).code).toBe(0);
    const npy = await readAll(join(dir, "dense.int8.safetensors"));
    const npz = await readAll(join(dir, "layers.int8.safetensors"));
    expect(Object.keys(npy.tensors)).toEqual(["dense", "dense_scale"]);
    expect(Object.keys(npz.tensors)).toEqual(["a", "a_scale", "b"]);
    expect(npz.tensors.a!.bytes).toEqual(npy.tensors.dense!.bytes);
  });

  it("quantizes a sharded checkpoint into shards and an index", async () => {
    const s1 = join(dir, "model-00001-of-00002.safetensors");
    const s2 = join(dir, "model-00002-of-00002.safetensors");
    await writeSafetensors(s1, [{ name: "a.weight", dtype: "F32", shape: [8, 4], data: gaussian(32, 1) }]);
    await writeSafetensors(s2, [
      { name: "b.weight", dtype: "F32", shape: [8, 4], data: gaussian(32, 2) },
      { name: "b.bias", dtype: "F32", shape: [8], data: gaussian(8, 3) },
    ]);
    const index = join(dir, "model.safetensors.index.json");
    await writeShardIndex(index, {
      metadata: { total_size: 32 * 4 * 2 + 32 },
      weight_map: { "a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors", "b.bias": "model-00002-of-00002.safetensors" },
    });
    const res = await runCli("quantize", index, "--int8", "--json");
    expect(res.code).toBe(0);
    const out = join(dir, "model.int8.safetensors.index.json");
    expect(JSON.parse(res.stdout).shards).toEqual([
      join(dir, "model-00001-of-00002.int8.safetensors"),
      join(dir, "model-00002-of-00002.int8.safetensors"),
    ]);
    const written = JSON.parse(readFileSync(out, "utf8"));
    expect(written.weight_map).toEqual({
      "a.weight": "model-00001-of-00002.int8.safetensors",
      "a.weight_scale": "model-00001-of-00002.int8.safetensors",
      "b.weight": "model-00002-of-00002.int8.safetensors",
      "b.weight_scale": "model-00002-of-00002.int8.safetensors",
      "b.bias": "model-00002-of-00002.int8.safetensors",
    });
    expect(written.metadata.total_size).toBe(32 + 8 * 4 + 32 + 8 * 4 + 32);
    const all = await readAll(out);
    expect(Object.keys(all.tensors).sort()).toEqual(["a.weight", "a.weight_scale", "b.bias", "b.weight", "b.weight_scale"]);
    const m = JSON.parse(readFileSync(`${out}.json`, "utf8")) as Manifest;
    expect(Object.keys(m.tensors)).toEqual(["a.weight", "b.weight", "b.bias"]);
  });
});

describe("recipes", () => {
  it("apply ordered rules, Keras quantizer configs included, and warn about rules that match nothing", async () => {
    const recipe = join(dir, "recipe.json");
    writeFileSync(
      recipe,
      JSON.stringify({
        rules: [
          { match: "lm_head.weight", skip: true },
          { match: "*.mlp.*", mode: "int4", block_size: 32 },
          {
            match: "*.self_attn.*.weight",
            keras: {
              module: "keras.quantizers",
              class_name: "AbsMaxQuantizer",
              config: { axis: [0], value_range: [-100, 100], epsilon: 1e-6, output_dtype: "int8" },
              registered_name: null,
            },
          },
          { match: "*.norm.weight", mode: "float8_e5m2" },
          { match: "does.not.exist", mode: "int8" },
        ],
      }),
    );
    const res = await runCli("quantize", DEMO, "--recipe", recipe, "-o", join(dir, "r.safetensors"), "--json");
    expect(res.code).toBe(0);
    expect(res.stderr.split("\n")).toEqual([
      expect.stringMatching(/^kquant: warning: recipe rule 3: axis 0 on a PyTorch-layout checkpoint gives one scale per input column .*--axis -1 is per output channel$/),
      "kquant: warning: recipe rule 5 (does.not.exist) matched no tensor",
      "",
    ]);
    const m = JSON.parse(readFileSync(join(dir, "r.safetensors.json"), "utf8")) as Manifest;
    expect(m.tensors["lm_head.weight"]).toMatchObject({ mode: "passthrough", reason: "skipped by recipe rule 1" });
    expect(m.tensors["model.layers.0.mlp.up_proj.weight"]).toMatchObject({ mode: "int4_grouped", block_size: 32 });
    expect(m.tensors["model.layers.0.self_attn.q_proj.weight"]).toMatchObject({
      mode: "int8",
      axis: 0,
      value_range: [-100, 100],
      epsilon: 1e-6,
      rule: "recipe rule 3",
    });
    // A recipe rule may name a 1-D tensor on purpose.
    expect(m.tensors["model.norm.weight"]).toMatchObject({ mode: "float8_e5m2" });
    expect(m.tensors["model.embed_tokens.weight"]).toMatchObject({ mode: "passthrough", reason: "no rule matched" });
  });

  it("reject unknown keys with the file and rule number", async () => {
    const recipe = join(dir, "bad.json");
    writeFileSync(recipe, JSON.stringify({ rules: [{ match: "*", mode: "int8", bits: 3 }] }));
    const res = await runCli("quantize", DEMO, "--recipe", recipe);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(`kquant: ${recipe}: rule 1: unknown key "bits"\n`);
  });
});

describe("kquant quantize --keras-backend", () => {
  it("refuses an unknown backend with one line, exit 2, and writes nothing", async () => {
    const input = join(dir, "tiny.safetensors");
    copyFileSync(DEMO, input);
    const res = await runCli("quantize", input, "--int8", "--keras-backend", "mlx");
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(res.stderr).toContain("expected one of tensorflow, torch, jax, numpy");
    expect(listDir(dir)).toEqual(["tiny.safetensors"]);
  });

  it("records the backend (default tensorflow) and the Keras version in the manifest", async () => {
    const input = join(dir, "tiny.safetensors");
    copyFileSync(DEMO, input);
    for (const backend of [undefined, "torch"]) {
      const out = join(dir, `out-${backend ?? "default"}.safetensors`);
      const res = await runCli("quantize", input, "--int4", "--block-size", "32", "-o", out, ...(backend ? ["--keras-backend", backend] : []));
      expect(res.code).toBe(0);
      const m = manifestFromMetadata((await readAll(out)).metadata)!;
      expect(m.keras_version).toBe("3.15.1");
      expect(m.options.keras_backend).toBe(backend ?? "tensorflow");
      const quantized = Object.values(m.tensors).filter((t) => t.mode !== "passthrough");
      expect(quantized.length).toBeGreaterThan(0);
      for (const t of quantized) expect(t.backend).toBe(backend ?? "tensorflow");
    }
  });
});
