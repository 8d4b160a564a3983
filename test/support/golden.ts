/**
 * Loads golden vectors written by fixtures/keras/generate.py under each Keras backend and merged
 * by merge.py (exact bytes, little-endian): fixtures/keras/vectors/<backend>/<name>.json, where a
 * case equal to an earlier backend's is stored as {"same_as": backend} and resolved here.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { DType, Tensor, TypedArray } from "../../src/quant/tensor.js";
import { KERAS_BACKENDS, type KerasBackend } from "../../src/quant/backend.js";

export { KERAS_BACKENDS };
export type { KerasBackend };

export interface GoldenTensor {
  dtype: string;
  shape: number[];
  b64: string;
}

export interface GoldenFile<C> {
  keras_version: string;
  backend: string;
  cases: C[];
}

const vectorsDir = fileURLToPath(new URL("../../fixtures/keras/vectors/", import.meta.url));

const cache = new Map<string, GoldenFile<unknown>>();

/** The vectors `name` as Keras on `backend` computed them, every case resolved. */
export function loadGolden<C>(name: string, backend: KerasBackend): GoldenFile<C> {
  const key = `${backend}/${name}`;
  const hit = cache.get(key);
  if (hit) return hit as GoldenFile<C>;
  const raw = JSON.parse(readFileSync(`${vectorsDir}${key}.json`, "utf8")) as GoldenFile<C | { same_as: KerasBackend }>;
  const cases = raw.cases.map((c, i) => {
    const ref = (c as { same_as?: KerasBackend }).same_as;
    return ref === undefined ? (c as C) : loadGolden<C>(name, ref).cases[i]!;
  });
  const file = { ...raw, cases };
  cache.set(key, file);
  return file;
}

/** Whether a case's computation was refused by its backend (recorded as {error: class name}). */
export function refused(t: unknown): t is { error: string } {
  return typeof t === "object" && t !== null && "error" in t;
}

const views: Record<string, (b: ArrayBuffer) => TypedArray> = {
  float64: (b) => new Float64Array(b),
  float32: (b) => new Float32Array(b),
  float16: (b) => new Uint16Array(b),
  bfloat16: (b) => new Uint16Array(b),
  float8_e4m3fn: (b) => new Uint8Array(b),
  float8_e5m2: (b) => new Uint8Array(b),
  int64: (b) => new BigInt64Array(b),
  int32: (b) => new Int32Array(b),
  int16: (b) => new Int16Array(b),
  int8: (b) => new Int8Array(b),
  uint64: (b) => new BigUint64Array(b),
  uint32: (b) => new Uint32Array(b),
  uint16: (b) => new Uint16Array(b),
  uint8: (b) => new Uint8Array(b),
  bool: (b) => new Uint8Array(b),
};

/** Decodes a golden tensor into a kquant Tensor (fresh, aligned buffer). */
export function decodeTensor(t: GoldenTensor): Tensor {
  const bytes = Buffer.from(t.b64, "base64");
  const copy = new ArrayBuffer(bytes.length);
  new Uint8Array(copy).set(bytes);
  const view = views[t.dtype];
  if (!view) throw new Error(`golden: unknown dtype ${t.dtype}`);
  return { dtype: t.dtype as DType, shape: t.shape, data: view(copy) };
}

/** The raw bytes of a typed array, for bit-for-bit comparison (NaN payloads included). */
export function bytesOf(a: TypedArray): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** A golden case's optional Keras arguments (null when the call left Keras's default). */
export interface KerasIntArgs {
  value_range: [number, number] | null;
  dtype: string | null;
  epsilon: number | null;
}

/** Those arguments as the kernels' options object, leaving out what Keras defaulted. */
export function intOptions<D extends string>(c: KerasIntArgs): { valueRange?: [number, number]; dtype?: D; epsilon?: number } {
  return {
    ...(c.value_range ? { valueRange: c.value_range } : {}),
    ...(c.dtype ? { dtype: c.dtype as D } : {}),
    ...(c.epsilon !== null ? { epsilon: c.epsilon } : {}),
  };
}

/** The values' bit patterns with every NaN as one marker (float32 or 16-bit bits). */
export function nanBlind(t: { dtype: string; data: { buffer: ArrayBufferLike; byteOffset: number; length: number } }): (number | "NaN")[] {
  const wide = t.dtype === "float32";
  const bits = wide ? new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length) : new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.length);
  const nan = (b: number) => (wide ? (b & 0x7fffffff) > 0x7f800000 : t.dtype === "float16" ? (b & 0x7fff) > 0x7c00 : (b & 0x7fff) > 0x7f80);
  return Array.from(bits, (b) => (nan(b) ? "NaN" : b));
}
