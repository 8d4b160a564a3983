/**
 * Where a run writes: one decision (`outputPaths`) gives every path a quantize run creates (the
 * data files with the steps each stores, the index, the manifest or a --shard job's part file),
 * from default names and the shard layout; and the refusal to clobber.
 */
import { access, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { KquantError } from "../../errors.js";
import { claimNew } from "../../formats/live-files.js";
import type { Step } from "../../plan/plan.js";
import { partPathFor } from "./part-manifest.js";
import type { ShardSpec } from "./shard-select.js";

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
    if (inputSet.has(resolve(out))) throw new KquantError({ file: out, what: "the output would overwrite the input" });
    const folder = dirname(out);
    if (!(await stat(folder).then((s) => s.isDirectory(), () => false))) {
      throw new KquantError({ file: out, what: `the output folder ${folder} does not exist` });
    }
    if (!force && (await exists(out))) {
      throw new KquantError({ file: out, what: "output already exists", hint: "use --force to overwrite it" });
    }
  }
  // Free now; still free when written, or the run is refused (two runs racing for one name).
  claimNew(outputs, !force);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** One output data file: the steps whose tensors it stores. */
export interface OutputFile {
  path: string;
  steps: Step[];
}

/** Every path a quantize run creates. */
export interface OutputPaths {
  /** What the user named (or the default): a .safetensors file or a .safetensors.index.json. */
  output: string;
  /** The data files in write order, each with its steps. */
  files: OutputFile[];
  /** The index to write (a sharded output not split by --shard), else null. */
  index: string | null;
  /** The manifest beside the output, or a --shard job's part file for merge-index. */
  manifest: string;
  /** Every path above, for the clobber check. */
  all: string[];
  /** A folder run: the output folder, the folder the files go to first, and its config.json there. */
  folder?: { out: string; staging: string; config: string };
}

/** What decides the output paths of a run. */
export interface OutputRequest {
  /** The weights: a .safetensors file or index (a model folder's own, for a folder run). */
  input: string;
  output?: string;
  /** Names the default output ("int8", "int4-g32", …). */
  tag: string;
  shard?: ShardSpec;
  /**
   * A folder run (MODEL_DIR in, OUT_DIR out): the data files keep the input's names and are
   * written into `staging` (a hidden folder beside `out`, renamed to it at the end; `out` itself
   * for --shard jobs, which share it).
   */
  folder?: { out: string; staging: string };
}

/**
 * A model folder's default output: `<dir>-<tag>` beside it, spelled as the user gave `dir` (the tag
 * names the layout already: `smol-int4-g64-mlx`). `.` and `..` are resolved to their names.
 */
export function defaultFolderOutput(dir: string, tag: string): string {
  const clean = dir.replace(/[\\/]+$/, "");
  const named = clean !== "" && ![".", ".."].includes(basename(clean));
  return `${named ? clean : resolve(dir)}-${tag}`;
}

/** The one decision of where a run writes (see OutputPaths); throws on an output that cannot hold the input's layout. */
export function outputPaths(req: OutputRequest, steps: readonly Step[]): OutputPaths {
  if (req.folder) return folderOutputPaths(req, req.folder, steps);
  const output = req.output ?? defaultOutputPath(req.input, req.tag);
  const sharded = isIndexPath(req.input);
  if (!sharded && isIndexPath(output)) throw new KquantError({ file: output, what: "a single-file input writes a single .safetensors file" });
  if (sharded && !isIndexPath(output)) {
    throw new KquantError({ file: output, what: "a sharded input writes a sharded output; name it *.safetensors.index.json" });
  }
  return pathsFrom(output, sharded, req.shard, steps, (shard) => shardOutputPath(output, shard, req.tag));
}

/** A folder run's paths: the input's file names (shards included) in the staging folder, the manifest beside the weights, config.json. */
function folderOutputPaths(req: OutputRequest, folder: { out: string; staging: string }, steps: readonly Step[]): OutputPaths {
  const output = join(folder.staging, basename(req.input));
  const paths = pathsFrom(output, isIndexPath(req.input), req.shard, steps, (shard) => join(folder.staging, basename(shard)));
  return { ...paths, folder: { ...folder, config: join(folder.staging, "config.json") } };
}

function pathsFrom(output: string, sharded: boolean, shard: ShardSpec | undefined, steps: readonly Step[], shardPath: (inputShard: string) => string): OutputPaths {
  let files: OutputFile[];
  if (!sharded) {
    files = [{ path: output, steps: [...steps] }];
  } else {
    const byShard = new Map<string, Step[]>();
    for (const step of steps) {
      const list = byShard.get(step.source.file) ?? [];
      list.push(step);
      byShard.set(step.source.file, list);
    }
    files = [...byShard].map(([file, list]) => ({ path: shardPath(file), steps: list }));
    // Shards of one name in two subfolders would land on one output name, the second replacing the first.
    const from = new Map<string, string>();
    for (const [file] of byShard) {
      const path = resolve(shardPath(file));
      const other = from.get(path);
      if (other !== undefined) throw new KquantError({ file: output, what: `input shards ${other} and ${file} would both be written to ${path}`, hint: "give the shards distinct file names" });
      from.set(path, file);
    }
  }
  const index = sharded && !shard ? output : null;
  const manifest = shard ? partPathFor(output, shard.index, shard.count) : manifestPathFor(output);
  const all = [...files.map((f) => f.path), ...(index ? [index] : []), manifest];
  const seen = new Set<string>();
  for (const path of all) {
    if (seen.has(resolve(path))) throw new KquantError({ file: output, what: `two of the run's outputs would be written to ${path}` });
    seen.add(resolve(path));
  }
  return { output, files, index, manifest, all };
}

/** Where a path of a folder run ends up once the staging folder is renamed to the output folder. */
export function finalPathOf(paths: OutputPaths, path: string): string {
  if (!paths.folder) return path;
  const { staging, out } = paths.folder;
  return path.startsWith(staging) ? join(out, path.slice(staging.length)) : path;
}
