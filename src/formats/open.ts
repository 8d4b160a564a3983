/** One entry point for every format kquant reads, chosen by file name. */
import { KquantError } from "../errors.js";
import { openNpy } from "./npy.js";
import { openNpz } from "./npz.js";
import { openSafetensors } from "./safetensors-reader.js";
import { openShardedSafetensors } from "./sharded.js";
import type { TensorReader } from "./types.js";

export async function openTensors(path: string): Promise<TensorReader> {
  const lower = path.toLowerCase();
  if (lower.endsWith(".safetensors.index.json")) return openShardedSafetensors(path);
  if (lower.endsWith(".safetensors")) return openSafetensors(path);
  if (lower.endsWith(".npy")) return openNpy(path);
  if (lower.endsWith(".npz")) return openNpz(path);
  throw new KquantError({ file: path, what: "unknown file type", hint: "expected .safetensors, .safetensors.index.json, .npy or .npz" });
}
