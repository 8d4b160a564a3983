/**
 * `kquant quantize MODEL_DIR --scheme NAME` on fused 3-D MoE experts against model_free_ptq itself:
 * the tiny Qwen3-MoE of fixtures/llmcompressor/gen_moe.py (its experts stored as transformers 5
 * holds them, `mlp.experts.gate_up_proj` [2, 256, 128] and `mlp.experts.down_proj` [2, 128, 128])
 * is rebuilt from its seeds and texts; the reference splits them per expert before quantizing, and
 * every output file (sha256), tensor and quantization_config must equal what it wrote (vectors/moe.json).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import { bf16Bits } from "../../src/quant/llmc/arith.js";
import { runCli, tempDir } from "../support/cli.js";
import { writeSafetensors, type TestTensor } from "../support/files.js";
import { loadLlmcGolden, prngWeight, type ModelFreeCase, type ModelFreeDigest } from "../support/llmc.js";

const golden = loadLlmcGolden<ModelFreeCase>("moe");
const model = golden.cases.find((c) => c.op === "model")!;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const DTYPE_NAMES: Record<string, string> = { BF16: "bfloat16", F32: "float32", I32: "int32", I64: "int64", U8: "uint8", F8_E4M3: "float8_e4m3fn" };

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const src = join(dir, "tiny-qwen3-moe");
const ready = (async () => {
  mkdirSync(src);
  for (const [name, text] of Object.entries(model.texts!)) writeFileSync(join(src, name), text);
  const inputs: TestTensor[] = Object.entries(model.tensors).map(([name, d]) => {
    const cols = d.shape.at(-1)!;
    const w = prngWeight(d.prng_seed!, [d.shape.reduce((a, b) => a * b, 1) / cols, cols], "bfloat16");
    return { name, dtype: "BF16", shape: d.shape, data: Uint16Array.from(w.values, (v) => bf16Bits(v)) };
  });
  await writeSafetensors(join(src, "model.safetensors"), inputs, { format: "pt" });
})();

async function digestsOf(folder: string): Promise<Record<string, ModelFreeDigest>> {
  const reader = await openTensors(join(folder, "model.safetensors.index.json"));
  try {
    const out: Record<string, ModelFreeDigest> = {};
    for (const t of reader.tensors) out[t.name] = { dtype: DTYPE_NAMES[t.dtype]!, shape: t.shape, sha256: sha(await reader.read(t.name)) };
    return out;
  } finally {
    await reader.close();
  }
}

describe("quantize MODEL_DIR --scheme: fused 3-D experts split per expert as model_free_ptq splits them", () => {
  golden.cases
    .filter((c) => c.op === "model_free_ptq")
    .forEach((c, i) => {
      it(`${c.preset}, ignore ${JSON.stringify(c.ignore)}`, async () => {
        await ready;
        expect(c.error).toBeUndefined();
        const out = join(dir, `out-${i}`);
        const r = await runCli("quantize", src, "--scheme", c.preset!, ...c.ignore!.flatMap((e) => ["--ignore", e]), "-o", out, "-q");
        expect([r.code, r.stderr]).toEqual([0, ""]);
        // the reference's files, byte for byte (kquant's manifest beside them is its own)
        const files = readdirSync(out).filter((f) => c.files!.includes(f)).sort();
        expect(files).toEqual(c.files);
        expect(await digestsOf(out)).toEqual(c.tensors);
        const { version: _, ...qc } = JSON.parse(readFileSync(join(out, "config.json"), "utf8")).quantization_config;
        expect(qc).toEqual(c.quantization_config);
        expect(Object.fromEntries(files.map((f) => [f, sha(readFileSync(join(out, f)))]))).toEqual(c.file_sha256);
      });
    });

  it("a name holding both gate_up_proj and down_proj, or a gate_up_proj of odd rows, is refused as the reference refuses it", async () => {
    for (const [name, shape, what] of [
      ["m.gate_up_proj.down_proj", [2, 4, 32], /the name holds both gate_up_proj and down_proj/],
      ["m.experts.gate_up_proj", [2, 3, 32], /gate_up_proj expects a second dimension divisible by 2 but got shape \[2, 3, 32\]/],
    ] as const) {
      const bad = join(dir, `bad-${shape[1]}`);
      mkdirSync(bad);
      writeFileSync(join(bad, "config.json"), "{}");
      const n = shape.reduce((a, b) => a * b, 1);
      await writeSafetensors(join(bad, "model.safetensors"), [{ name, dtype: "F32", shape: [...shape], data: new Float32Array(n).fill(1) }]);
      const r = await runCli("quantize", bad, "--scheme", "W8A16", "-o", join(bad, "..", `bad-out-${shape[1]}`));
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(what);
    }
  });
});
