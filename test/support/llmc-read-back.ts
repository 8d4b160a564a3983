/**
 * The --scheme read-back's golden cases (fixtures/llmcompressor/vectors/decompress.json, from
 * compressed-tensors 0.19.0's decompression of model_free_ptq's folders) and the check of one:
 * the tiny Llama rebuilt in its dtype, `kquant quantize --scheme` (runScheme), `dequantize` back,
 * every weight's dtype and sha256 compared. test/pipeline/read-back/scheme-folder.test.ts runs a
 * case of each format and dtype; the slow suite runs them all.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import type { StDType } from "../../src/formats/types.js";
import { runScheme } from "../../src/pipeline/quantize/scheme-run.js";
import { runDequantize } from "../../src/pipeline/read-back/dequantize.js";
import { storedBits, type LlmcDType } from "../../src/quant/llmc/arith.js";
import { writeSafetensors, type TestTensor } from "./files.js";
import { loadLlmcGolden, prngWeight, type ModelFreeCase } from "./llmc.js";

/** One case of vectors/decompress.json: a preset on the tiny Llama in one dtype, each decompressed weight's digest. */
export interface DecompressCase {
  op: "decompress";
  preset: string;
  model_dtype: LlmcDType;
  ignore: string[];
  tensors: Record<string, { dtype: string; shape: number[]; sha256: string; float32_sha256: string }>;
}

export const DECOMPRESS_CASES = loadLlmcGolden<DecompressCase>("decompress").cases;
export const TINY_LLAMA = loadLlmcGolden<ModelFreeCase>("model_free").cases.find((c) => c.op === "model")!;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const TORCH: Record<string, string> = { BF16: "bfloat16", F16: "float16", F32: "float32" };
const ST: Record<LlmcDType, StDType> = { bfloat16: "BF16", float16: "F16", float32: "F32" };

/** The tiny Llama of gen_model_free.py in `dtype` (prng.py's seeds) as a model folder in `dir` (written once). */
export async function tinyLlama(dir: string, dtype: LlmcDType): Promise<string> {
  const path = join(dir, `tiny-llama-${dtype}`);
  if (existsSync(path)) return path;
  mkdirSync(path);
  for (const [name, text] of Object.entries(TINY_LLAMA.texts!)) writeFileSync(join(path, name), text);
  const tensors: TestTensor[] = Object.entries(TINY_LLAMA.tensors).map(([name, d]) => {
    const [rows, cols] = d.shape.length === 2 ? (d.shape as [number, number]) : [1, d.shape[0]!];
    const w = prngWeight(d.prng_seed!, [rows, cols], dtype);
    return { name, dtype: ST[dtype], shape: d.shape, data: dtype === "float32" ? w.values : Uint16Array.from(w.values, (v) => storedBits(v, dtype)) };
  });
  await writeSafetensors(join(path, "model.safetensors"), tensors);
  return path;
}

/** Each tensor's dtype (torch's name) and sha256. */
export async function digests(file: string): Promise<Record<string, { dtype: string; sha256: string }>> {
  const reader = await openTensors(file);
  try {
    const out: Record<string, { dtype: string; sha256: string }> = {};
    for (const t of reader.tensors) out[t.name] = { dtype: TORCH[t.dtype] ?? t.dtype, sha256: sha(await reader.read(t.name)) };
    return out;
  } finally {
    await reader.close();
  }
}

/** `kquant quantize --scheme PRESET --ignore lm_head` of the tiny Llama in `dtype`, into `dir` (written once). */
export async function schemeFolder(dir: string, preset: string, dtype: LlmcDType): Promise<string> {
  const out = join(dir, `${preset}-${dtype}`);
  if (!existsSync(out)) await runScheme({ input: await tinyLlama(dir, dtype), output: out, scheme: preset, ignore: ["lm_head"] });
  return out;
}

/** Quantizes the tiny Llama with the case's preset, dequantizes it back (and with --dtype f32) and compares every weight with the reference's. */
export async function checkDecompressCase(dir: string, c: DecompressCase): Promise<void> {
  expect(c.ignore).toEqual(["lm_head"]);
  const out = await schemeFolder(dir, c.preset, c.model_dtype);
  const natural = join(dir, `${c.preset}-${c.model_dtype}.safetensors`);
  const report = await runDequantize({ input: out, output: natural });
  const got = await digests(natural);
  const weights = Object.keys(c.tensors);
  expect(report.dequantized.map((d) => d.name).sort()).toEqual(weights);
  expect(report.dequantized.every((d) => d.mode === `scheme_${c.preset}`)).toBe(true);
  expect(Object.fromEntries(weights.map((k) => [k, got[k]]))).toEqual(Object.fromEntries(weights.map((k) => [k, { dtype: c.tensors[k]!.dtype, sha256: c.tensors[k]!.sha256 }])));
  // the rest (norms, the ignored lm_head) as they were
  expect(report.passthrough.map((p) => p.name).sort()).toEqual(Object.keys(TINY_LLAMA.tensors).filter((k) => !weights.includes(k)).sort());
  // --dtype f32: CompressedTensorsDequantizer(dtype=torch.float32)'s bytes
  const wide = join(dir, `${c.preset}-${c.model_dtype}.f32.safetensors`);
  await runDequantize({ input: out, output: wide, dtype: "f32" });
  const f32 = await digests(wide);
  for (const k of weights) expect([k, f32[k]]).toEqual([k, { dtype: "float32", sha256: c.tensors[k]!.float32_sha256 }]);
}
