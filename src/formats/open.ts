/** One entry point for every format kquant reads, chosen by file name. */
import { KquantError } from "../errors.js";
import { folderWeights, isFolder, READABLE_INPUTS } from "./folder.js";
import { openNpy } from "./npy.js";
import { openNpz } from "./npz.js";
import { openSafetensors } from "./safetensors-reader.js";
import { openShardedSafetensors } from "./sharded.js";
import type { TensorReader } from "./types.js";

export async function openTensors(path: string): Promise<TensorReader> {
  // A model folder reads as its weights (model.safetensors.index.json or model.safetensors).
  if (await isFolder(path)) return openTensors(await folderWeights(path));
  const lower = path.toLowerCase();
  if (lower.endsWith(".safetensors.index.json")) return openShardedSafetensors(path);
  if (lower.endsWith(".safetensors")) return openSafetensors(path);
  if (lower.endsWith(".npy")) return openNpy(path);
  if (lower.endsWith(".npz")) return openNpz(path);
  throw unknownInput(path);
}

const PICKLES = [".bin", ".pt", ".pth", ".ckpt", ".pkl"];

/** Why `path` is not an input kquant reads, with what to give instead. */
function unknownInput(path: string): KquantError {
  const lower = path.toLowerCase();
  if (PICKLES.some((ext) => lower.endsWith(ext))) {
    return new KquantError({
      file: path,
      what: "not a format kquant reads (.bin and .pt are usually PyTorch pickles, which can run code when loaded)",
      hint: `save it as .safetensors first; kquant reads ${READABLE_INPUTS}`,
    });
  }
  return new KquantError({ file: path, what: "unknown file type", hint: `kquant reads ${READABLE_INPUTS}` });
}
