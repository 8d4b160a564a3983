/** Where a run writes: default names, the shard layout, and the refusal to clobber. */
import { access, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { KquantError } from "../../errors.js";

const INPUT_SUFFIXES = [".safetensors.index.json", ".safetensors", ".npz", ".npy"];

export function isIndexPath(path: string): boolean {
  return path.endsWith(".safetensors.index.json");
}

/** `dir/model.safetensors` → `dir/model.<tag>.safetensors` (an index keeps being an index). */
export function defaultOutputPath(input: string, tag: string): string {
  const name = basename(input);
  const suffix = INPUT_SUFFIXES.find((s) => name.endsWith(s)) ?? "";
  const stem = name.slice(0, name.length - suffix.length);
  const ext = suffix === ".safetensors.index.json" ? ".safetensors.index.json" : ".safetensors";
  return join(dirname(input), `${stem}.${tag}${ext}`);
}

/** The manifest's copy beside an output. */
export function manifestPathFor(output: string): string {
  return `${output}.json`;
}

/** `model-00001-of-00002.safetensors` → `model-00001-of-00002.<tag>.safetensors`, in the output's folder. */
export function shardOutputPath(outputIndex: string, inputShard: string, tag: string): string {
  return join(dirname(outputIndex), defaultOutputPath(basename(inputShard), tag));
}

/** Refuses to write over an input, and over an existing file unless `force`. */
export async function checkOutputs(outputs: readonly string[], inputs: readonly string[], force: boolean): Promise<void> {
  const inputSet = new Set(inputs.map((p) => resolve(p)));
  for (const out of outputs) {
    if (inputSet.has(resolve(out))) throw new KquantError(`${out}: the output would overwrite the input`);
    const folder = dirname(out);
    if (!(await stat(folder).then((s) => s.isDirectory(), () => false))) {
      throw new KquantError(`${out}: the output folder ${folder} does not exist`);
    }
    if (!force && (await exists(out))) {
      throw new KquantError(`${out}: output already exists (use --force to overwrite it)`);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
