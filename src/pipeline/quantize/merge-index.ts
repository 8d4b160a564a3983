/**
 * `kquant merge-index`: joins the parts of `--shard i/N` jobs into the output index
 * (`*.safetensors.index.json`) and manifest (`<index>.json`) one unsharded run would have written,
 * after checking the parts belong together (same input, options and kquant version), that every
 * part 1..N is there once, and that every input shard and tensor is covered exactly once.
 */
import { readdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { KquantError } from "../../errors.js";
import { writeFileAtomic, type WriteOptions } from "../../formats/atomic.js";
import { writeShardIndex } from "../../formats/safetensors-writer.js";
import { asUserError, readRegularFile } from "../../formats/io.js";
import { fileNameInFolder, pathInFolder } from "../../formats/contained.js";
import type { Manifest } from "../manifest.js";
import { checkOutputs, manifestPathFor } from "./outputs.js";
import { isShardJob, MAX_SHARD_JOBS } from "./shard-select.js";
import { PART_FILE_PATTERN, PART_FORMAT, type PartManifest } from "./part-manifest.js";

export interface MergeReport {
  index: string;
  manifest: string;
  parts: string[];
  shards: number;
  tensors: number;
  total_size: number;
}

/** Part files named directly, or found in the folders given. */
export async function findParts(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = (await stat(p)).isDirectory();
    } catch (err) {
      throw asUserError(err, p);
    }
    if (!isDir) out.push(p);
    else for (const n of (await readdir(p)).filter((n) => PART_FILE_PATTERN.test(n)).sort()) out.push(join(p, n));
  }
  if (out.length === 0) throw new KquantError({ file: paths.join(" "), what: "no part files (*.safetensors.index.json.part-I-of-N.json) found" });
  return [...new Set(out)];
}

async function readPart(path: string): Promise<PartManifest> {
  let text: string;
  try {
    text = (await readRegularFile(path)).toString("utf8");
  } catch (err) {
    throw asUserError(err, path);
  }
  let part: PartManifest;
  try {
    part = JSON.parse(text) as PartManifest;
  } catch (err) {
    throw new KquantError({ file: path, what: `not valid JSON: ${(err as Error).message.split("\n")[0]}` });
  }
  if (part?.format !== PART_FORMAT || !Array.isArray(part.shards) || typeof part.manifest?.tensors !== "object" || part.manifest.tensors === null || !Array.isArray(part.input?.shards)) {
    throw new KquantError({ file: path, what: "not a kquant part manifest (written by kquant quantize --shard i/N)" });
  }
  if (!isShardJob(part.part, part.parts)) throw new KquantError({ file: path, what: `part ${JSON.stringify(part.part)} of ${JSON.stringify(part.parts)} is not a job number i of N with 1 <= i <= N <= ${MAX_SHARD_JOBS}` });
  // The files a merge reads or writes are named here: each must be a file in the part's own folder,
  // of the kind it names (a merge writes the index and its manifest, and nothing else).
  fileNameInFolder(part.index, { file: path, field: "output index", holder: "part file" });
  if (!part.index.endsWith(".safetensors.index.json")) throw new KquantError({ file: path, what: `output index ${JSON.stringify(part.index)} is not a *.safetensors.index.json name` });
  for (const shard of part.shards) {
    if (shard === null || typeof shard !== "object" || !Array.isArray(shard.stored) || !Array.isArray(shard.tensors)) {
      throw new KquantError({ file: path, what: "not a kquant part manifest (a shard entry is not an object with stored and tensors lists)" });
    }
    fileNameInFolder(shard.output, { file: path, field: "output shard", holder: "part file" });
    if (!shard.output.endsWith(".safetensors")) throw new KquantError({ file: path, what: `output shard ${JSON.stringify(shard.output)} is not a *.safetensors name` });
    pathInFolder(shard.input, { file: path, field: "input shard", holder: "part file" });
  }
  return part;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export async function mergeIndex(paths: readonly string[], opts: { force?: boolean } & WriteOptions = {}): Promise<MergeReport> {
  const files = await findParts(paths);
  const parts = await Promise.all(files.map(async (f) => ({ file: f, part: await readPart(f) })));
  const first = parts[0]!;
  const folder = dirname(first.file);
  const byNumber = new Map<number, string>();
  for (const { file, part } of parts) {
    const differs = (what: string, mine: unknown, theirs: unknown) =>
      new KquantError({ file, what: `${what} ${JSON.stringify(mine)} differs from ${JSON.stringify(theirs)} in ${first.file}` });
    if (dirname(file) !== folder) throw new KquantError({ file, what: `every part must be in one folder (${folder}), beside its output shards` });
    if (part.parts !== first.part.parts) throw differs("part count", part.parts, first.part.parts);
    if (part.index !== first.part.index) throw differs("output index", part.index, first.part.index);
    if (!same(part.input, first.part.input)) throw differs("input", part.input.file, first.part.input.file);
    const m = part.manifest;
    const f = first.part.manifest;
    if (m.kquant_version !== f.kquant_version) throw differs("kquant version", m.kquant_version, f.kquant_version);
    if (m.format_version !== f.format_version) throw differs("manifest format", m.format_version, f.format_version);
    if (!same(m.options, f.options)) throw differs("options", m.options, f.options);
    if (!same(m.source, f.source)) throw differs("source", m.source, f.source);
    const earlier = byNumber.get(part.part);
    if (earlier !== undefined) throw new KquantError({ file, what: `part ${part.part} of ${part.parts} is also in ${earlier}` });
    byNumber.set(part.part, file);
  }
  const { parts: count, input } = first.part;
  const missing = Array.from({ length: count }, (_, k) => k + 1).filter((k) => !byNumber.has(k));
  if (missing.length > 0) throw new KquantError({ file: folder, what: `parts ${missing.join(", ")} of ${count} are missing` });

  // Every input shard once, in the order an unsharded run writes them (sorted names).
  const shardOwner = new Map<string, { file: string; shard: PartManifest["shards"][number]; records: Manifest["tensors"] }>();
  for (const { file, part } of parts) {
    for (const shard of part.shards) {
      const other = shardOwner.get(shard.input);
      if (other !== undefined) throw new KquantError({ file, what: `input shard ${shard.input} was also quantized by ${other.file}` });
      if (!input.shards.includes(shard.input)) throw new KquantError({ file, what: `input shard ${shard.input} is not a shard of ${input.file}` });
      shardOwner.set(shard.input, { file, shard, records: part.manifest.tensors });
    }
  }
  const uncovered = input.shards.filter((s) => !shardOwner.has(s));
  if (uncovered.length > 0) throw new KquantError({ file: folder, what: `input shards ${uncovered.join(", ")} are in no part` });

  const weightMap: Record<string, string> = {};
  const tensors: Manifest["tensors"] = {};
  let totalSize = 0;
  for (const name of input.shards) {
    const { file, shard, records } = shardOwner.get(name)!;
    for (const t of shard.tensors) {
      if (Object.prototype.hasOwnProperty.call(tensors, t)) throw new KquantError({ file, what: `tensor "${t}" is in more than one part` });
      const record = records[t];
      if (record === undefined) throw new KquantError({ file, what: `tensor "${t}" has no manifest record` });
      tensors[t] = record;
    }
    for (const s of shard.stored) {
      if (Object.prototype.hasOwnProperty.call(weightMap, s.name)) throw new KquantError({ file, what: `stored tensor "${s.name}" is written twice` });
      weightMap[s.name] = shard.output;
      totalSize += s.bytes;
    }
  }
  const covered = Object.keys(tensors).length;
  if (covered !== input.tensor_count) {
    throw new KquantError({ file: folder, what: `the parts cover ${covered} tensors but ${input.file} has ${input.tensor_count}` });
  }
  for (const { shard } of shardOwner.values()) {
    try {
      await stat(join(folder, shard.output));
    } catch {
      throw new KquantError({ file: join(folder, shard.output), what: "output shard is missing", hint: `copy every job's outputs into ${folder}` });
    }
  }

  const index = join(folder, first.part.index);
  const manifestPath = manifestPathFor(index);
  await checkOutputs([index, manifestPath], [], !!opts.force);
  const manifest: Manifest = { ...first.part.manifest, tensors };
  await writeShardIndex(index, { metadata: { total_size: totalSize }, weight_map: weightMap }, { fsync: opts.fsync });
  await writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`, { fsync: opts.fsync });
  return { index, manifest: manifestPath, parts: files.map((f) => basename(f)), shards: input.shards.length, tensors: covered, total_size: totalSize };
}
