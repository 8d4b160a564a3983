/**
 * Hugging Face model folders: `config.json` beside `model.safetensors` or a sharded
 * `model.safetensors.index.json`, and other files (tokenizer, generation config, model card) that
 * a quantized copy keeps byte for byte. A folder output is built in a hidden staging folder beside
 * its target and renamed into place, so a failed or interrupted run leaves no half-written folder.
 */
import { copyFile, lstat, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { parseJson } from "./json-syntax.js";
import { basename, isAbsolute, join, relative, resolve, sep } from "node:path";
import { KquantError } from "../errors.js";
import { tempPathFor, writeFileAtomic, type WriteOptions } from "./atomic.js";
import { forgetOutput, noteOutput, trackTemp, untrackTemp } from "./live-files.js";
import { asUserError, errnoOf, openRegular, readRegularFile } from "./io.js";

export const CONFIG_FILE = "config.json";
/** What kquant reads, as error hints list it. */
export const READABLE_INPUTS = ".safetensors, .safetensors.index.json, .npy, .npz and model folders (config.json + model.safetensors or its index)";
/** config.json is small JSON; anything bigger than this is not one. */
const MAX_CONFIG_BYTES = 64 * 1024 * 1024;
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
  if (errnoOf(await stat(configPath).catch((err: unknown) => err)) === "ENOENT") throw new KquantError(`${configPath}: a model folder needs config.json; there is none`);
  const text = (await readRegularFile(configPath, MAX_CONFIG_BYTES)).toString("utf8");
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
    const index = JSON.parse((await readRegularFile(weights)).toString("utf8")) as { weight_map?: Record<string, string> };
    // Only names in the folder: the sharded reader refuses the others with its own message.
    return [...new Set(Object.values(index.weight_map ?? {}))].filter((n) => typeof n === "string" && !n.includes("/"));
  } catch {
    return []; // the sharded reader reports a broken index with its own message
  }
}

/** Is `inner` the folder `outer` or inside it? (both resolved) */
export function isWithin(inner: string, outer: string): boolean {
  const rel = relative(resolve(outer), resolve(inner));
  return rel === "" || !(rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel));
}

/**
 * Refuses an output folder that is the input, lies inside it, or holds it (replacing it would
 * remove the input); one that exists unless `force`; and, even with `force`, one kquant did not
 * write: `--force` replaces only a folder holding a kquant manifest beside its weights
 * (`model.safetensors.json` or `model.safetensors.index.json.json`).
 */
export async function checkOutputFolder(out: string, input: string, force: boolean | "shared"): Promise<void> {
  if (isWithin(out, input)) throw new KquantError({ file: out, what: `the output folder would overwrite or lie inside the input folder ${input}` });
  if (isWithin(input, out)) throw new KquantError({ file: out, what: `the output folder holds the input folder ${input}; replacing it would remove the input`, hint: "choose an output folder beside the input" });
  const parent = resolve(out, "..");
  if (!(await isFolder(parent))) throw new KquantError({ file: out, what: `the output's parent folder ${parent} does not exist` });
  const existing = await lstat(out).catch(() => null);
  if (existing === null || force === "shared") return;
  if (!force) throw new KquantError({ file: out, what: "output already exists", hint: "use --force to overwrite it" });
  if (!existing.isDirectory()) throw new KquantError({ file: out, what: "exists and is not a folder; --force replaces only a folder kquant wrote", hint: "remove it yourself or choose another -o" });
  if (!(await isKquantFolder(out))) {
    throw new KquantError({ file: out, what: "was not written by kquant (no kquant manifest beside its weights); --force replaces only a folder kquant wrote", hint: "remove it yourself or choose another -o" });
  }
}

/** Does `dir` hold a kquant manifest beside model weights (a folder a quantize run wrote)? */
export async function isKquantFolder(dir: string): Promise<boolean> {
  for (const name of WEIGHT_FILES) {
    const manifest = join(dir, `${name}.json`);
    const st = await stat(manifest).catch(() => null);
    if (st === null || !st.isFile() || st.size > MAX_MANIFEST_PROBE) continue;
    try {
      const parsed = JSON.parse((await readRegularFile(manifest)).toString("utf8")) as { format?: unknown } | null;
      if (parsed?.format === "kquant") return true;
    } catch {
      // Not JSON: not kquant's.
    }
  }
  return false;
}

/** A manifest larger than this is not one kquant wrote for a folder it may replace. */
const MAX_MANIFEST_PROBE = 256 * 1024 * 1024;

/**
 * A new, empty staging folder beside `out` (hidden, unique), registered as a live temp (live-files.ts)
 * so that an interrupt removes it with everything in it.
 */
export async function createStaging(out: string): Promise<string> {
  const staging = tempPathFor(out);
  trackTemp(staging, 0);
  try {
    await mkdir(staging);
  } catch (err) {
    untrackTemp(staging);
    throw asUserError(err, out);
  }
  return staging;
}

/**
 * Copies `names` (files or folders) from `from` into `to`, byte for byte; each file lands whole
 * (temp copy, then rename). Links are followed; only regular files and folders are copied (a FIFO,
 * socket or device is refused, as is a link loop or a folder linked into itself), by a walk that
 * keeps its own list of folders to visit, so no depth of nesting can exhaust the stack.
 */
export async function copyEntries(from: string, to: string, names: readonly string[]): Promise<void> {
  const pending: { src: string; dst: string; seen: readonly string[] }[] = names.map((n) => ({ src: join(from, n), dst: join(to, n), seen: [] }));
  while (pending.length > 0) {
    const { src, dst, seen } = pending.pop()!;
    try {
      const st = await stat(src);
      if (st.isDirectory()) {
        const id = `${st.dev}:${st.ino}`;
        if (seen.includes(id)) throw new KquantError({ file: src, what: "a folder linked into itself; kquant copies no link loop" });
        await mkdir(dst);
        for (const name of (await readdir(src)).sort()) pending.push({ src: join(src, name), dst: join(dst, name), seen: [...seen, id] });
        continue;
      }
      if (!st.isFile()) throw new KquantError({ file: src, what: "not a regular file or folder (a FIFO, socket or device is never copied)" });
      await (await openRegular(src)).close();
      const temp = tempPathFor(dst);
      trackTemp(temp, 0);
      try {
        await copyFile(src, temp);
        await rename(temp, dst);
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      } finally {
        untrackTemp(temp);
      }
    } catch (err) {
      if (errnoOf(err) === "ELOOP") throw new KquantError({ file: src, what: "a link loop (too many levels of symbolic links)" });
      throw asUserError(err, src);
    }
  }
}

/** Writes config.json (2-space JSON, as transformers writes it) into `dir`. */
export async function writeConfig(dir: string, config: Record<string, unknown>, opts: WriteOptions = {}): Promise<void> {
  await writeFileAtomic(join(dir, CONFIG_FILE), configText(config), opts);
}

/** The text writeConfig writes for `config` (hashed into the manifest before it is written). */
export function configText(config: Record<string, unknown>): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** Renames the finished staging folder to `out`, replacing an existing `out` (checked for --force before). */
export async function commitStaging(staging: string, out: string, force: boolean): Promise<void> {
  // Without --force `out` was free at the start: if another run has made it since, this one is refused.
  const taken = await lstat(out).then(() => true, () => false);
  if (taken && !force) throw new KquantError({ file: out, what: "output already exists (another run wrote it meanwhile)", hint: "use --force to overwrite it" });
  const old = taken ? tempPathFor(out) : null;
  // An interrupt from here on removes the new folder (and the old one, which --force gave up).
  if (old) trackTemp(old, 0);
  noteOutput(out);
  try {
    if (old) await rename(out, old);
    await rename(staging, out);
    untrackTemp(staging);
  } catch (err) {
    forgetOutput(out);
    if (["ENOTEMPTY", "EEXIST", "ENOTDIR"].includes(errnoOf(err) ?? "")) {
      throw new KquantError({ file: out, what: "output already exists (another run wrote it meanwhile)", hint: "use --force to overwrite it" });
    }
    if (old) await rename(old, out).catch(() => undefined);
    throw asUserError(err, out);
  }
  if (old) {
    await rm(old, { recursive: true, force: true });
    untrackTemp(old);
  }
}

/** Removes a staging folder; never throws, as it runs on error paths. */
export async function discardStaging(staging: string): Promise<void> {
  await rm(staging, { recursive: true, force: true }).catch(() => undefined);
  untrackTemp(staging);
}
