/**
 * The llm-compressor golden vectors (fixtures/llmcompressor/vectors/<name>.json, written by
 * fixtures/llmcompressor/make-vectors.sh from the real llm-compressor + compressed-tensors), and
 * the deterministic inputs their large cases are built from (fixtures/llmcompressor/prng.py).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { rounderOf, type LlmcDType } from "../../src/quant/llmc/arith.js";
import type { LlmcWeight } from "../../src/quant/llmc/linear.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../src/quant/convert.js";
import { decodeTensor, type GoldenTensor } from "./golden.js";

export interface LlmcGoldenFile<C> {
  llmcompressor_version: string;
  compressed_tensors_version: string;
  torch_version: string;
  cases: C[];
}

const dir = fileURLToPath(new URL("../../fixtures/llmcompressor/vectors/", import.meta.url));

export function loadLlmcGolden<C>(name: string): LlmcGoldenFile<C> {
  return JSON.parse(readFileSync(`${dir}${name}.json`, "utf8")) as LlmcGoldenFile<C>;
}

/** A golden float32 / bfloat16 / float16 tensor as float32 values (exact), with its dtype. */
export function floatValues(t: GoldenTensor): { dtype: LlmcDType; values: Float32Array } {
  const d = decodeTensor(t);
  if (t.dtype === "float32") return { dtype: "float32", values: d.data as Float32Array };
  const bits = d.data as Uint16Array;
  const out = new Float32Array(bits.length);
  if (t.dtype === "float16") {
    f16BitsToF32(bits, out);
    return { dtype: "float16", values: out };
  }
  if (t.dtype !== "bfloat16") throw new Error(`llmc golden: ${t.dtype} is not a weight dtype`);
  bf16BitsToF32(bits, out);
  return { dtype: "bfloat16", values: out };
}

/** A golden 2-D weight as the kernels take it. */
export function goldenWeight(t: GoldenTensor): LlmcWeight & { values: Float32Array } {
  const { dtype, values } = floatValues(t);
  return { dtype, rows: t.shape[0]!, cols: t.shape[1]!, values };
}

/**
 * prng.py's xorshift32 inputs: ((x >> 8) - 2^23) · 2^-26 per step (`wide`: · 2^-(16 + (x & 31))),
 * rounded to `dtype` like torch's `.to()`.
 */
export function prngWeight(seed: number, shape: [number, number], dtype: LlmcDType, wide = false): LlmcWeight & { values: Float32Array } {
  const n = shape[0] * shape[1];
  const values = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const v = Math.fround(((x >>> 8) - 2 ** 23) * 2 ** -(wide ? 16 + (x & 31) : 26));
    values[i] = rounderOf(dtype)(v);
  }
  return { dtype, rows: shape[0], cols: shape[1], values };
}

/** One tensor of vectors/model_free.json: dtype (torch's name), shape, sha256 of its bytes; an input's prng.py seed. */
export interface ModelFreeDigest {
  dtype: string;
  shape: number[];
  sha256: string;
  prng_seed?: number;
}

/** A case of vectors/model_free.json: the tiny Llama ("model") or one model_free_ptq run. */
export interface ModelFreeCase {
  op: "model" | "model_free_ptq";
  preset?: string;
  ignore?: string[];
  config_json?: Record<string, unknown>;
  /** The input folder's config.json and generation_config.json as transformers wrote them. */
  texts?: Record<string, string>;
  tensors: Record<string, ModelFreeDigest>;
  /** sha256 of every file model_free_ptq wrote. */
  file_sha256?: Record<string, string>;
  quantization_config?: Record<string, unknown> & { format: string; ignore: string[] };
  files?: string[];
  converter_equal?: boolean;
  index?: { metadata: { total_size: number }; weight_map: Record<string, string> };
  error?: { message: string };
}

/**
 * `w` as --scheme hands a 16-bit weight to the kernels (format-slice.ts llmcWeightOf): its
 * bfloat16 / float16 bit patterns, which they widen themselves; a float32 weight as it is.
 */
export function sixteenBit(w: LlmcWeight & { values: Float32Array }): LlmcWeight {
  if (w.dtype === "float32") return w;
  const bits = new Uint16Array(w.values.length);
  (w.dtype === "bfloat16" ? f32ToBf16Bits : f32ToF16Bits)(w.values, bits);
  return { ...w, values: { bits, kind: w.dtype } };
}

/** x rounded to `dtype` (torch's `.to()`: nearest even; float16 past its range to ±Inf), as float32. */
export function roundTo(x: Float32Array, dtype: "float32" | "bfloat16" | "float16"): Float32Array {
  if (dtype === "float32") return x;
  const h = new Uint16Array(x.length);
  const out = new Float32Array(x.length);
  if (dtype === "bfloat16") {
    f32ToBf16Bits(x, h);
    bf16BitsToF32(h, out);
  } else {
    f32ToF16Bits(x, h);
    f16BitsToF32(h, out);
  }
  return out;
}
