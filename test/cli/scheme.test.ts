/**
 * `kquant quantize MODEL_DIR --scheme NAME` against llm-compressor's model_free_ptq itself: the
 * tiny Llama of fixtures/llmcompressor/gen_model_free.py is rebuilt from its recorded seeds and
 * JSON texts, and every output folder's files (sha256 of each), tensors (name, dtype, shape,
 * sha256), index and quantization_config are compared with what the reference wrote
 * (vectors/model_free.json).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import { folderManifestProblems } from "../../src/pipeline/folder-manifest.js";
import { bf16Bits } from "../../src/quant/llmc/arith.js";
import { runCli, tempDir } from "../support/cli.js";
import { writeSafetensors, type TestTensor } from "../support/files.js";
import { loadLlmcGolden, prngWeight, type ModelFreeCase, type ModelFreeDigest } from "../support/llmc.js";

type Digest = ModelFreeDigest;

const golden = loadLlmcGolden<ModelFreeCase>("model_free");
const model = golden.cases.find((c) => c.op === "model")!;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const DTYPE_NAMES: Record<string, string> = { BF16: "bfloat16", F32: "float32", F16: "float16", I8: "int8", U8: "uint8", I32: "int32", I64: "int64", F8_E4M3: "float8_e4m3fn" };

const { dir, cleanup } = tempDir();
afterAll(cleanup);

/** The tiny Llama's tensors, from prng.py's seeds, in bfloat16 as transformers saved them. */
const inputs: TestTensor[] = Object.entries(model.tensors).map(([name, d]) => {
  const [rows, cols] = d.shape.length === 2 ? (d.shape as [number, number]) : [1, d.shape[0]!];
  const w = prngWeight(d.prng_seed!, [rows, cols], "bfloat16");
  return { name, dtype: "BF16", shape: d.shape, data: Uint16Array.from(w.values, (v) => bf16Bits(v)) };
});

function writeFolder(path: string, shards: TestTensor[][] | null): Promise<void> {
  mkdirSync(path);
  for (const [name, text] of Object.entries(model.texts!)) writeFileSync(join(path, name), text);
  if (shards === null) return writeSafetensors(join(path, "model.safetensors"), inputs);
  const names = shards.map((_, i) => `model-0000${i + 1}-of-0000${shards.length}.safetensors`);
  const weightMap = Object.fromEntries(shards.flatMap((s, i) => s.map((t) => [t.name, names[i]!])));
  writeFileSync(join(path, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  return Promise.all(shards.map((s, i) => writeSafetensors(join(path, names[i]!), s))).then(() => undefined);
}

async function digestsOf(folder: string): Promise<{ tensors: Record<string, Digest>; shardOf: Record<string, string> }> {
  const reader = await openTensors(join(folder, "model.safetensors.index.json"));
  try {
    const tensors: Record<string, Digest> = {};
    const shardOf: Record<string, string> = {};
    for (const t of reader.tensors) {
      tensors[t.name] = { dtype: DTYPE_NAMES[t.dtype]!, shape: t.shape, sha256: sha(await reader.read(t.name)) };
      shardOf[t.name] = t.file.slice(folder.length + 1);
    }
    return { tensors, shardOf };
  } finally {
    await reader.close();
  }
}

const src = join(dir, "tiny-llama");
const MANIFEST = "model.safetensors.index.json.json";
const ready = writeFolder(src, null);

describe("quantize MODEL_DIR --scheme: model_free_ptq's folder, for every preset", () => {
  golden.cases
    .filter((c) => c.op === "model_free_ptq")
    .forEach((c, i) => {
      it(`${c.preset}, ignore ${JSON.stringify(c.ignore)}${c.error ? ": refused" : ""}`, async () => {
        await ready;
        const out = join(dir, `out-${i}`);
        const r = await runCli("quantize", src, "--scheme", c.preset!, ...c.ignore!.flatMap((e) => ["--ignore", e]), "-o", out, "-q");
        if (c.error) {
          expect(r.code).toBe(2);
          expect(r.stderr).toMatch(c.preset === "UNQUANTIZED" ? c.error.message : /--scheme (FP8|NVFP4): its static activation scales need calibration data \(the closest data-free scheme is (FP8_DYNAMIC|NVFP4A16)\)$/m);
          expect(existsSync(out)).toBe(false);
          return;
        }
        expect([r.code, r.stderr]).toEqual([0, ""]);
        // the reference's files, and kquant's manifest beside its index (docs/llmcompressor.md)
        expect(readdirSync(out).sort()).toEqual([...c.files!, MANIFEST].sort());
        const { tensors } = await digestsOf(out);
        expect(tensors).toEqual(c.tensors);
        const index = JSON.parse(readFileSync(join(out, "model.safetensors.index.json"), "utf8"));
        expect(index).toEqual(c.index);
        const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
        const { version, ...qc } = config.quantization_config;
        expect(version).toBe(golden.compressed_tensors_version);
        expect(qc).toEqual(c.quantization_config);
        delete config.quantization_config;
        expect(config).toEqual(model.config_json);
        // the files themselves, byte for byte: tensor order in the file, the index's and config.json's text
        expect(Object.fromEntries(c.files!.map((f) => [f, sha(readFileSync(join(out, f)))]))).toEqual(c.file_sha256);
        // the manifest vouches for every file the reference wrote, and they are as written
        const manifest = JSON.parse(readFileSync(join(out, MANIFEST), "utf8"));
        expect(Object.keys(manifest.files)).toEqual(c.files);
        expect(await folderManifestProblems(out)).toEqual({ manifest: join(out, MANIFEST), checked: c.files, problems: [] });

        // --dry-run: what the run writes, predicted without writing: the quantized modules, the index's total_size
        const dry = await runCli("quantize", src, "--scheme", c.preset!, ...c.ignore!.flatMap((e) => ["--ignore", e]), "-o", join(dir, `dry-${i}`), "--dry-run", "--json");
        expect(dry.code).toBe(0);
        expect(existsSync(join(dir, `dry-${i}`))).toBe(false);
        const plan = JSON.parse(dry.stdout);
        expect(plan.dry_run).toBe(true);
        expect(plan.bytes_after).toBe(c.index!.metadata.total_size);
        const modules = Object.keys(c.tensors).filter((n) => n.endsWith(".weight_scale")).map((n) => n.slice(0, -".weight_scale".length));
        expect(plan.quantized.map((q: { name: string }) => q.name.slice(0, -".weight".length)).sort()).toEqual(modules.sort());
        expect(plan.skipped.length + plan.quantized.length).toBe(Object.keys(model.tensors).length);
      });
    });
});

describe("kquant verify of a --scheme folder re-hashes the files its manifest vouches for", () => {
  it("W8A16: every file checked; a changed config.json is a file problem, exit 1", async () => {
    await ready;
    const c = golden.cases.find((k) => k.preset === "W8A16" && k.ignore!.join() === "lm_head")!;
    const out = join(dir, "verified");
    expect((await runCli("quantize", src, "--scheme", "W8A16", "--ignore", "lm_head", "-o", out, "-q")).code).toBe(0);
    const ok = JSON.parse((await runCli("verify", out, "--json")).stdout);
    expect([ok.ok, ok.summary.files_checked]).toEqual([true, c.files]);
    writeFileSync(join(out, "config.json"), `${readFileSync(join(out, "config.json"), "utf8")}\n`);
    const bad = await runCli("verify", out, "--json");
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).file_problems).toEqual([`${join(out, "config.json")}: changed since kquant wrote it (its xxh3-128 differs from the manifest's)`]);
  });
});

describe("quantize MODEL_DIR --scheme on a sharded checkpoint", () => {
  const sharded = join(dir, "tiny-llama-sharded");
  // q_proj and gate_proj in the first shard, their partners (k, v, up) in the second
  const first = new Set(["lm_head.weight", "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.gate_proj.weight"]);
  const made = writeFolder(sharded, [inputs.filter((t) => first.has(t.name)), inputs.filter((t) => !first.has(t.name))]);

  for (const preset of ["NVFP4A16", "W4A16"]) {
    it(`${preset}: the same tensors as the single file; NVFP4's partners land in the shard of q / gate`, async () => {
      await made;
      const c = golden.cases.find((k) => k.preset === preset && k.ignore!.join() === "lm_head")!;
      const out = join(dir, `sharded-${preset}`);
      const r = await runCli("quantize", sharded, "--scheme", preset, "--ignore", "lm_head", "-o", out, "-q");
      expect([r.code, r.stderr]).toEqual([0, ""]);
      const { tensors, shardOf } = await digestsOf(out);
      expect(tensors).toEqual(c.tensors);
      const partner = shardOf["model.layers.0.self_attn.k_proj.weight_packed"];
      expect(partner).toBe(preset === "NVFP4A16" ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
      expect(shardOf["model.layers.0.mlp.up_proj.weight_packed"]).toBe(partner);
      expect(shardOf["model.layers.0.self_attn.o_proj.weight_packed"]).toBe("model-00002-of-00002.safetensors");
      const index = JSON.parse(readFileSync(join(out, "model.safetensors.index.json"), "utf8"));
      expect(index).toEqual({ metadata: { total_size: c.index!.metadata.total_size }, weight_map: shardOf });
    });
  }
});

describe("quantize --scheme: bad input, nothing written", () => {
  it("an unknown scheme lists the known ones", async () => {
    await ready;
    const out = join(dir, "bad-1");
    const r = await runCli("quantize", src, "--scheme", "W9A16", "-o", out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--scheme W9A16: unknown scheme \(known: W2…W4A4, W2…W8A8, W2…W8A16, W4A16_ASYM, INT8, W4AFP8, FP8_DYNAMIC, FP8_BLOCK, NVFP4A16, MXFP4A16, MXFP4, MXFP8A16, MXFP8\)$/m);
    expect(existsSync(out)).toBe(false);
  });

  it("a weight whose in-features the group does not divide stays float with the reason (--strict refuses it)", async () => {
    const odd = join(dir, "odd");
    mkdirSync(odd);
    writeFileSync(join(odd, "config.json"), "{}");
    const w = (name: string, cols: number): TestTensor => ({ name, dtype: "F32", shape: [4, cols], data: Float32Array.from({ length: 4 * cols }, (_, k) => Math.sin(k)) });
    await writeSafetensors(join(odd, "model.safetensors"), [w("a.weight", 128), w("b.weight", 96)]);
    const strict = join(dir, "odd-strict");
    const s = await runCli("quantize", odd, "--scheme", "w4a16", "--strict", "-o", strict);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/tensor "b\.weight": W4A16: group size 128 does not divide in_features 96 \(unflatten to \[-1, 128\] fails\)$/m);
    expect(existsSync(strict)).toBe(false);

    const out = join(dir, "odd-out");
    const r = await runCli("quantize", odd, "--scheme", "w4a16", "-o", out, "-q");
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/b\.weight stays float: group size 128 does not divide in_features 96/);
    const { tensors } = await digestsOf(out);
    expect(Object.keys(tensors).sort()).toEqual(["a.weight_packed", "a.weight_scale", "a.weight_shape", "b.weight"]);
    const qc = JSON.parse(readFileSync(join(out, "config.json"), "utf8")).quantization_config;
    expect(qc.ignore).toEqual(["b"]);
    expect(Object.keys(qc.config_groups)).toEqual(["w4a16"]);
  });

  it("a file instead of a folder, or a folder none of whose weights the format holds, exits 2", async () => {
    const file = await runCli("quantize", join(dir, "odd", "model.safetensors"), "--scheme", "W8A16", "-o", join(dir, "f"));
    expect(file.code).toBe(2);
    expect(file.stderr).toMatch(/model\.safetensors: --scheme takes a model folder/);
    const none = await runCli("quantize", join(dir, "odd"), "--scheme", "W8A16", "--ignore", "a", "-o", join(dir, "none"));
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/odd: no weight can take W8A16, nothing written \(b\.weight: group size 128 does not divide in_features 96/);
    expect(existsSync(join(dir, "none"))).toBe(false);
  });

  it("--exclude globs become ignore entries (the weight's module); --ignore without --scheme is refused", async () => {
    await ready;
    const out = join(dir, "excluded");
    const r = await runCli("quantize", src, "--scheme", "W8A16", "--exclude", "lm_head.*", "--exclude", "*.mlp.*", "-o", out, "-q");
    expect(r.code).toBe(0);
    const qc = JSON.parse(readFileSync(join(out, "config.json"), "utf8")).quantization_config;
    expect(qc.ignore).toEqual(["lm_head", "model.layers.0.mlp.down_proj", "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj"]);
    const { tensors } = await digestsOf(out);
    expect(tensors["model.layers.0.mlp.up_proj.weight"]?.dtype).toBe("bfloat16");
    const bad = await runCli("quantize", src, "--int8", "--ignore", "lm_head", "-o", join(dir, "x.safetensors"));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--ignore: only applies with --scheme/);
    const mixed = await runCli("quantize", src, "--scheme", "W8A16", "--int8", "-o", join(dir, "y"));
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/--int8: does not apply with --scheme/);
  });
});
