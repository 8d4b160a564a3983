/** Small checkpoints written with kquant's own writers, for tests that need a particular input. */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
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
