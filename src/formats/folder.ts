/**
 * Hugging Face model folders: `config.json` beside `model.safetensors` or a sharded
 * `model.safetensors.index.json`, and other files (tokenizer, generation config, model card) that
 * a quantized copy keeps byte for byte. A folder output is built in a hidden staging folder beside
 * its target and renamed into place, so a failed or interrupted run leaves no half-written folder.
 */
import { copyFile, cp, mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { parseJson } from "./json-syntax.js";
import { basename, isAbsolute, join, relative, resolve, sep } from "node:path";
import { KquantError } from "../errors.js";
import { tempPathFor, writeFileAtomic, type WriteOptions } from "./atomic.js";
import { asUserError } from "./io.js";

export const CONFIG_FILE = "config.json";
/** What kquant reads, as error hints list it. */
export const READABLE_INPUTS = ".safetensors, .safetensors.index.json, .npy, .npz and model folders (config.json + model.safetensors or its index)";
/** The weights a folder may hold, in the order they are looked for. */
export const WEIGHT_FILES = ["model.safetensors.index.json", "model.safetensors"] as const;

/** A model folder as read: its weights' entry point, its parsed config, and every other file. */
export interface ModelFolder {
  dir: string;
  /** `dir/model.safetensors.index.json` or `dir/model.safetensors`. */
  weights: string;
  config: Record<string, unknown>;
  /** Top-level entries (files or folders) that are neither config.json nor weights, sorted. */
  others: string[];
}

/** Is `path` a folder? (false when it does not exist) */
export async function isFolder(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** The weights entry point of a model folder (throws naming the folder when it has none). */
export async function folderWeights(dir: string): Promise<string> {
  for (const name of WEIGHT_FILES) {
    const path = join(dir, name);
    if (await stat(path).then((s) => s.isFile(), () => false)) return path;
  }
  throw new KquantError({
    file: dir,
    what: `a model folder needs ${WEIGHT_FILES.join(" or ")}; found neither`,
    hint: `kquant reads ${READABLE_INPUTS}; .bin and .pt weights must be saved as .safetensors first`,
  });
}

/** Reads a model folder; one-line errors name the file: no config.json, config.json not a JSON object, no weights. */
export async function openModelFolder(dir: string): Promise<ModelFolder> {
  const configPath = join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(configPath, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new KquantError(`${configPath}: a model folder needs config.json; there is none`);
    throw asUserError(err, configPath);
  }
  let config: unknown;
  try {
    config = parseJson(text);
  } catch (err) {
    throw new KquantError(`${configPath}: not valid JSON: ${(err as Error).message}`);
  }
  if (config === null || typeof config !== "object" || Array.isArray(config)) throw new KquantError(`${configPath}: not a JSON object`);
  const weights = await folderWeights(dir);
  const weightFiles = new Set([CONFIG_FILE, basename(weights), ...(await shardNamesOf(weights))]);
  const others = (await readdir(dir)).filter((n) => !weightFiles.has(n)).sort();
  return { dir, weights, config: config as Record<string, unknown>, others };
}

/** The shard file names an index lists (none for a single file). */
async function shardNamesOf(weights: string): Promise<string[]> {
  if (!weights.endsWith(".index.json")) return [];
  try {
    const index = JSON.parse(await readFile(weights, "utf8")) as { weight_map?: Record<string, string> };
    return [...new Set(Object.values(index.weight_map ?? {}))];
  } catch {
    return []; // the sharded reader reports a broken index with its own message
  }
}

/** Refuses an output folder that is the input, lies inside it, or exists (unless `force`). */
export async function checkOutputFolder(out: string, input: string, force: boolean): Promise<void> {
  const rel = relative(resolve(input), resolve(out));
  if (rel === "" || !(rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel))) {
    throw new KquantError(`${out}: the output folder would overwrite or lie inside the input folder ${input}`);
  }
  const parent = resolve(out, "..");
  if (!(await isFolder(parent))) throw new KquantError(`${out}: the output's parent folder ${parent} does not exist`);
  if (!force && (await stat(out).then(() => true, () => false))) {
    throw new KquantError(`${out}: output already exists (use --force to overwrite it)`);
  }
}

/** A new, empty staging folder beside `out` (hidden, unique). */
export async function createStaging(out: string): Promise<string> {
  const staging = tempPathFor(out);
  try {
    await mkdir(staging);
  } catch (err) {
    throw asUserError(err, out);
  }
  return staging;
}

/** Copies `names` (files or folders) from `from` into `to`, byte for byte; each file lands whole (temp copy, then rename). */
export async function copyEntries(from: string, to: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const src = join(from, name);
    const dst = join(to, name);
    try {
      if ((await stat(src)).isDirectory()) {
        await cp(src, dst, { recursive: true, force: true, preserveTimestamps: true });
        continue;
      }
      const temp = tempPathFor(dst);
      await copyFile(src, temp);
      await rename(temp, dst).catch(async (err: unknown) => {
        await rm(temp, { force: true });
        throw err;
      });
    } catch (err) {
      throw asUserError(err, src);
    }
  }
}

/** Writes config.json (2-space JSON, as transformers writes it) into `dir`. */
export async function writeConfig(dir: string, config: Record<string, unknown>, opts: WriteOptions = {}): Promise<void> {
  await writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, opts);
}

/** Renames the finished staging folder to `out`, replacing an existing `out` (checked for --force before). */
export async function commitStaging(staging: string, out: string): Promise<void> {
  const old = (await stat(out).then(() => true, () => false)) ? tempPathFor(out) : null;
  try {
    if (old) await rename(out, old);
    await rename(staging, out);
  } catch (err) {
    if (old) await rename(old, out).catch(() => undefined);
    throw asUserError(err, out);
  }
  if (old) await rm(old, { recursive: true, force: true });
}

/** Removes a staging folder; never throws, as it runs on error paths. */
export async function discardStaging(staging: string): Promise<void> {
  await rm(staging, { recursive: true, force: true }).catch(() => undefined);
}
