/**
 * The manifest of a folder whose files must stay a reference's byte for byte (`--scheme`:
 * model_free_ptq's, `--mlx`: mlx_lm.convert's): nothing of kquant's may go into the weights'
 * `__metadata__`, so the manifest is only the sidecar a Keras-mode folder run also writes, in the
 * output folder beside the weights' entry point (`model.safetensors.index.json.json`, or
 * `model.safetensors.json` for a folder without an index: `manifestPathFor`). It records the run
 * and the hash of every other top-level file of the folder as written; `kquant verify` re-hashes
 * them (`fileHashProblems`, also what checks a Keras-mode manifest's `files`), and `--force`
 * recognises the folder as kquant's (formats/folder.ts isKquantFolder).
 *
 *   { format: "kquant", format_version, kquant_version, writer: "llm-compressor model_free_ptq" | "mlx_lm.convert",
 *     options: {…}, source: { folder }, files: { "<file name>": "<hex>" }, files_hash: "xxh3-128" }
 */
import { lstat, readdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { KquantError } from "../errors.js";
import { writeFileAtomic, type WriteOptions } from "../formats/atomic.js";
import { folderWeights, isFolder } from "../formats/folder.js";
import { openRegular, readRegularFile } from "../formats/io.js";
import { VERSION } from "../version.js";
import { HASH_ALGORITHM, hashStream, HEX_LENGTH, type HashAlgorithm } from "./hash.js";
import { MANIFEST_FORMAT } from "./manifest.js";
import { manifestPathFor } from "./quantize/outputs.js";

/** Which reference's folder kquant wrote. */
export type FolderWriter = "llm-compressor model_free_ptq" | "mlx_lm.convert";

/** A folder manifest (see the module comment). */
export interface FolderManifest {
  format: "kquant";
  format_version: number;
  kquant_version: string;
  writer: FolderWriter;
  /** The run's options as the CLI understood them. */
  options: Record<string, unknown>;
  /** The input folder's name (as a Keras-mode manifest records its input file's). */
  source: { folder: string };
  /** Every other top-level file of the folder, by name: its hash (`files_hash`) as written. */
  files: Record<string, string>;
  files_hash: HashAlgorithm;
}

/** Read in parts of this size when hashing a file (a shard can be many GB). */
const PART_BYTES = 8 << 20;

/** The hash of the regular file `path`, read part by part. */
export async function hashFile(path: string, algorithm: HashAlgorithm = HASH_ALGORITHM): Promise<string> {
  const fh = await openRegular(path);
  try {
    const h = await hashStream(algorithm);
    const buf = new Uint8Array(PART_BYTES);
    // Explicit positions: the page's file system (web/vfs.ts) keeps no file position.
    for (let at = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, at);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
    return h.digest();
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * Writes the manifest of the finished folder `dir` (a staging folder about to be renamed) beside
 * its weights' entry point `entry` (a file name in `dir`), hashing every other top-level regular file.
 */
export async function writeFolderManifest(
  dir: string,
  entry: string,
  head: { writer: FolderWriter; options: Record<string, unknown>; source: string },
  opts: WriteOptions = {},
): Promise<void> {
  const path = manifestPathFor(join(dir, entry));
  const files: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    if (name === basename(path) || !(await lstat(join(dir, name))).isFile()) continue;
    files[name] = await hashFile(join(dir, name));
  }
  const manifest: FolderManifest = {
    format: "kquant",
    format_version: MANIFEST_FORMAT,
    kquant_version: VERSION,
    writer: head.writer,
    options: head.options,
    source: { folder: head.source },
    files,
    files_hash: HASH_ALGORITHM,
  };
  await writeFileAtomic(path, `${JSON.stringify(manifest, null, 2)}\n`, opts);
}

/**
 * Re-hashes the files a manifest vouches for (`files`: a plain file name in `dir` → its hash with
 * `algorithm`): a problem, one line each, for a name that is not a plain file name (a manifest is
 * input: a path is refused, never followed), a file missing or unreadable, or one that changed.
 * `checked` lists the files hashed. Any folder with a manifest: Keras-mode runs' `files`, --scheme
 * and --mlx folders' (folderManifestProblems).
 */
export async function fileHashProblems(dir: string, files: unknown, algorithm: unknown = "sha256"): Promise<{ checked: string[]; problems: string[] }> {
  if (files === null || typeof files !== "object" || Array.isArray(files)) return { checked: [], problems: ["the manifest's files is not an object of file hashes"] };
  if (typeof algorithm !== "string" || !Object.hasOwn(HEX_LENGTH, algorithm)) return { checked: [], problems: [`the manifest's files_hash names an unknown hash algorithm ${JSON.stringify(algorithm)}`] };
  const checked: string[] = [];
  const problems: string[] = [];
  for (const [name, hash] of Object.entries(files as Record<string, unknown>)) {
    if (name === "" || name === "." || name === ".." || basename(name) !== name || name.includes("\\")) {
      problems.push(`the manifest's files names ${JSON.stringify(name)}, not a file name in the output's folder`);
      continue;
    }
    const file = join(dir, name);
    let actual: string;
    try {
      actual = await hashFile(file, algorithm as HashAlgorithm);
    } catch (err) {
      if (err instanceof KquantError) {
        problems.push(`${file}: written by kquant with the weights but cannot be read (${err.what})`);
        continue;
      }
      throw err;
    }
    checked.push(name);
    if (actual !== hash) problems.push(`${file}: changed since kquant wrote it (its ${algorithm} differs from the manifest's)`);
  }
  return { checked, problems };
}

/**
 * `kquant verify` of a folder kquant wrote without a manifest in `__metadata__` (--scheme, --mlx),
 * given as the folder or a file in it: the folder manifest beside its weights' entry point, if
 * there is one, and every file it vouches for re-hashed, one line per problem. `checked` is null
 * when there is no manifest (a folder the reference wrote itself, or one copied without it).
 */
export async function folderManifestProblems(path: string): Promise<{ manifest: string | null; checked: string[] | null; problems: string[] }> {
  const read = await readFolderManifest(path);
  if (read === null) return { manifest: null, checked: null, problems: [] };
  const { file, dir, manifest: m } = read;
  if (typeof m === "string") return { manifest: file, checked: [], problems: [m] };
  const { checked, problems } = await fileHashProblems(dir, m.files, m.files_hash ?? "sha256");
  return { manifest: file, checked, problems: problems.map((p) => (p.startsWith("the manifest's") ? `${file}: ${p.slice(4)}` : p)) };
}

/**
 * The folder manifest of the folder `path` is (or is a file in): its path, the folder, and its
 * content or (a string) why it is not a kquant manifest; null when there is none.
 */
export async function readFolderManifest(path: string): Promise<{ file: string; dir: string; manifest: Partial<FolderManifest> | string } | null> {
  // A folder, or a file in it (its weights' entry point names the manifest).
  const dir = (await isFolder(path)) ? path : dirname(path);
  const entry = await folderWeights(dir).catch(() => null);
  const file = entry === null ? null : manifestPathFor(entry);
  if (file === null || (await lstat(file).catch(() => null)) === null) return null;
  let m: Partial<FolderManifest> | null;
  try {
    m = JSON.parse((await readRegularFile(file, 1 << 30)).toString("utf8")) as Partial<FolderManifest> | null;
  } catch (err) {
    if (err instanceof KquantError) return { file, dir, manifest: err.message };
    if (err instanceof SyntaxError) return { file, dir, manifest: `${file}: not valid JSON` };
    throw err;
  }
  if (m === null || typeof m !== "object" || m.format !== "kquant") return { file, dir, manifest: `${file}: not a kquant manifest` };
  return { file, dir, manifest: m };
}
