/** Small checkpoints written with kquant's own writers, for tests that need a particular input. */
import { createHash } from "node:crypto";
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { createSafetensorsWriter } from "../../src/formats/safetensors-writer.js";
import type { StDType } from "../../src/formats/types.js";
import { byteView, type TypedArray } from "../../src/quant/tensor.js";

export interface TestTensor {
  name: string;
  dtype: StDType;
  shape: number[];
  data: TypedArray;
}

export { byteView as bytes } from "../../src/quant/tensor.js";

export async function writeSafetensors(path: string, tensors: TestTensor[], metadata: Record<string, string> = {}): Promise<void> {
  const w = await createSafetensorsWriter(path, tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape })), metadata);
  for (const t of tensors) await w.write(t.name, byteView(t.data));
  await w.finish();
}

/** Deterministic pseudo-gaussian weights (a seeded LCG through Box-Muller), for inputs of any size. */
export function gaussian(n: number, seed = 1, std = 0.02): Float32Array {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 1) / 4294967297;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next()) * std;
  return out;
}

export function fileHash(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

export function listDir(dir: string): string[] {
  return readdirSync(dir).sort();
}

/**
 * A large float32 safetensors checkpoint written in 4 MiB chunks without holding it in memory:
 * `tensors` tensors `layer.<i>.weight` of `tensorBytes` bytes each, shaped [rows, 1024], of small
 * finite values (one 4 MiB pattern repeated).
 */
export function writeLargeCheckpoint(path: string, tensors: number, tensorBytes: number): void {
  const header: Record<string, unknown> = {};
  for (let i = 0; i < tensors; i++) {
    header[`layer.${i}.weight`] = { dtype: "F32", shape: [tensorBytes / 4 / 1024, 1024], data_offsets: [i * tensorBytes, (i + 1) * tensorBytes] };
  }
  const text = JSON.stringify(header);
  const json = text.padEnd(Math.ceil(text.length / 8) * 8, " ");
  const chunk = new Uint8Array(gaussian(1 << 20, 7).buffer);
  const fd = openSync(path, "w");
  try {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, length);
    writeSync(fd, Buffer.from(json));
    for (let left = tensors * tensorBytes; left > 0; left -= chunk.length) writeSync(fd, chunk, 0, Math.min(left, chunk.length));
  } finally {
    closeSync(fd);
  }
}
