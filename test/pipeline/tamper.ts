/** Test helpers: gaussian checkpoints, and surgery on a safetensors file's bytes and manifest hashes. */
import { readFile, writeFile } from "node:fs/promises";
import { createSafetensorsWriter } from "../../src/formats/safetensors-writer.js";
import { hashHex } from "../../src/pipeline/hash.js";
import { hashesOf, type TensorRecord } from "../../src/pipeline/manifest.js";

/** Deterministic standard normal samples (LCG + Box–Muller). */
export function gaussian(n: number, seed: number, std = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 1) / 4294967297;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(t) * std;
    if (i + 1 < n) out[i + 1] = r * Math.sin(t) * std;
  }
  return out;
}

/** Writes F32 gaussian tensors of the given shapes to a safetensors file. */
export async function writeGaussianCheckpoint(path: string, tensors: { name: string; shape: number[] }[], seed = 1): Promise<void> {
  const w = await createSafetensorsWriter(path, tensors.map((t) => ({ ...t, dtype: "F32" as const })), {});
  for (const [i, t] of tensors.entries()) {
    const data = gaussian(t.shape.reduce((a, b) => a * b, 1), seed + i, 0.05);
    await w.write(t.name, new Uint8Array(data.buffer));
  }
  await w.finish();
}

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export async function headerOf(path: string): Promise<{ dataStart: number; header: Record<string, Entry> & { __metadata__?: Record<string, string> } }> {
  const bytes = await readFile(path);
  const len = Number(bytes.readBigUInt64LE(0));
  return { dataStart: 8 + len, header: JSON.parse(bytes.subarray(8, 8 + len).toString("utf8")) };
}

/** The absolute byte range of a tensor's data. */
export async function tensorRange(path: string, name: string): Promise<[number, number]> {
  const { dataStart, header } = await headerOf(path);
  const e = header[name];
  if (!e) throw new Error(`no tensor ${name} in ${path}`);
  return [dataStart + e.data_offsets[0], dataStart + e.data_offsets[1]];
}

/** Lets `edit` change a tensor's bytes in place. */
export async function editTensor(path: string, name: string, edit: (data: Buffer) => void): Promise<void> {
  const bytes = await readFile(path);
  const [start, end] = await tensorRange(path, name);
  edit(bytes.subarray(start, end));
  await writeFile(path, bytes);
}

/**
 * Replaces the manifest's hash of stored tensor `name` with the hash of its current bytes, so
 * that only a semantic check can catch the edit (hashes are fixed-length, so the header keeps its size).
 */
export async function fixStoredHash(path: string, name: string): Promise<void> {
  const bytes = await readFile(path);
  const { header } = await headerOf(path);
  const manifest = JSON.parse(header.__metadata__!.kquant!) as { tensors: Record<string, TensorRecord> };
  const rec = Object.values(manifest.tensors).find((r) => name in (hashesOf(r).hashes?.stored ?? {}))!;
  const { algorithm, hashes } = hashesOf(rec);
  const old = hashes!.stored[name]!;
  const [start, end] = await tensorRange(path, name);
  const fresh = await hashHex(bytes.subarray(start, end), algorithm);
  const text = bytes.toString("latin1");
  const at = text.indexOf(old);
  if (at < 0 || text.indexOf(old, at + 1) >= 0) throw new Error(`hash of ${name} not found exactly once`);
  bytes.write(fresh, at, "latin1");
  await writeFile(path, bytes);
}

/** Odd lengths on purpose: int4 packing pads, grouped int4 has a short last group. */
export const ODD_TENSORS = [
  { name: "w.odd", shape: [12, 33] },
  { name: "w.tall", shape: [40, 8] },
  { name: "bias", shape: [8] },
];
