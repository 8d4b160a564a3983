/** One entry point for every format kquant reads, chosen by file name. */
import { stat } from "node:fs/promises";
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
  throw await unknownInput(path);
}

const PICKLES = [".bin", ".pt", ".pth", ".ckpt", ".pkl"];

/** Why `path` is not an input kquant reads, with what to give instead. */
async function unknownInput(path: string): Promise<KquantError> {
  const isFolder = await stat(path).then((s) => s.isDirectory(), () => false);
  if (isFolder) {
    return new KquantError({ file: path, what: "is a folder", hint: "give its model.safetensors, or model.safetensors.index.json for a sharded model" });
  }
  const lower = path.toLowerCase();
  if (PICKLES.some((ext) => lower.endsWith(ext))) {
    return new KquantError({
      file: path,
      what: "not a format kquant reads (.bin and .pt are usually PyTorch pickles, which can run code when loaded)",
      hint: "save it as .safetensors first",
    });
  }
  return new KquantError({ file: path, what: "unknown file type", hint: "expected .safetensors, .safetensors.index.json, .npy or .npz" });
}
