/**
 * `kquant quantize`: formats → plan → kernels → writer, one tensor at a time, so memory stays
 * bounded by the largest tensor whatever the checkpoint's size.
 */
import { basename } from "node:path";
import { KquantError } from "../../errors.js";
import { byteLengthOf } from "../../formats/dtypes.js";
import { openTensors } from "../../formats/open.js";
import { createSafetensorsWriter, shardIndexText, type SafetensorsWriter, type ShardIndex } from "../../formats/safetensors-writer.js";
import { writeFileAtomic, type WriteOptions } from "../../formats/atomic.js";
import type { TensorInfo, TensorReader } from "../../formats/types.js";
import { KQUANT_LAYOUT } from "../../layouts/kquant.js";
import { writtenBytes, type Layout } from "../../layouts/layout.js";
import type { StoredBytes } from "../../plan/stored.js";
import { buildPlan, writtenTensorsOf, type Plan, type Step } from "../../plan/plan.js";
import type { Rule } from "../../plan/rules.js";
import type { QuantSpec } from "../../plan/spec.js";
import { modeNamed } from "../../modes/registry.js";
import { HASH_ALGORITHM, hashHex } from "../hash.js";
import { hashesOf, MANIFEST_KEY, newManifest, type Manifest } from "../manifest.js";
import { isFolder, openModelFolder } from "../../formats/folder.js";
import { runInFolder } from "./folder-run.js";
import { checkOutputs, finalPathOf, isIndexPath, outputPaths, type OutputFile, type OutputPaths } from "./outputs.js";
import { namesDigest, PART_FORMAT, type PartManifest } from "./part-manifest.js";
import { outputKindOf } from "../output-kinds.js";
import { selectShards, type ShardSpec } from "./shard-select.js";
import { streamParallel, type StreamContext, type StreamItem } from "./parallel-stream.js";
import { startProgress } from "../progress.js";
import { quantizeTensor, Scratch } from "./quantize-tensor.js";
import { DEFAULT_WORKER_URL, defaultThreads, WorkerPool, workerAvailable } from "../workers.js";
import { largestBy } from "../../units.js";
import { tensorBuffer } from "../../formats/io.js";
import { alreadyQuantized } from "../../formats/quantized-input.js";
import { runReport, type QuantizedEntry, type QuantizeReport, type SkippedEntry } from "./run-report.js";

export type { ModeTotals, QuantizedEntry, QuantizeReport, QuantizeSummary, SkippedEntry } from "./run-report.js";

export interface QuantizeJob extends WriteOptions {
  input: string;
  /** Default: `<input stem>.<tag>.safetensors` beside the input. */
  output?: string;
  rules: Rule[];
  /** How the output names and shapes the quantized tensors (default: kquant's own). */
  layout?: Layout;
  /** Names the default output: "int8", "int4", "float8", "recipe". */
  tag: string;
  /** Recorded in the manifest as given. */
  options: Record<string, unknown>;
  force?: boolean;
  dryRun?: boolean;
  quiet?: boolean;
  allowNonFinite?: boolean;
  /** A tensor that cannot take its rule's mode fails the run instead of being kept as it is (plan.ts). */
  strict?: boolean;
  /**
   * Worker threads for quantizing and hashing (default: KQUANT_THREADS or one per core, at most
   * 4). 0 runs everything on the calling thread, as does running from the TypeScript sources.
   */
  threads?: number;
  /** `--shard i/N`: quantize only this job's input shards and write a part for merge-index. */
  shard?: ShardSpec;
  /** Told each warning of the plan as soon as it is planned, before anything is read or written. */
  onWarning?: (warning: string) => void;
  /** The worker script (default: the compiled worker-entry.js beside this module). */
  workerUrl?: URL;
}


export async function runQuantize(job: QuantizeJob): Promise<QuantizeReport> {
  // A model folder (config.json + weights) is quantized into a folder (folder-run.ts).
  const folder = (await isFolder(job.input)) ? await openModelFolder(job.input) : null;
  // Anything but a folder writes a file whose extension says its format (output-kinds.ts).
  if (job.output !== undefined && !folder) outputKindOf("quantize", job.output);
  const weights = folder?.weights ?? job.input;
  const reader = await openTensors(weights);
  let pool: WorkerPool | null = null;
  try {
    const quantized = alreadyQuantized(reader.tensors, reader.metadata, folder?.config ?? null);
    if (quantized !== null) {
      throw new KquantError({
        file: job.input,
        what: `already quantized: ${quantized}`,
        hint: "quantize the float original, or kquant dequantize this first",
      });
    }
    const tensors = job.shard ? shardTensors(weights, reader, job.shard) : reader.tensors;
    // The workers start (each compiles its bundle and kernels) while this thread plans.
    if (!job.dryRun) pool = workerPoolFor(job, tensors.reduce((n, t) => n + t.byteLength, 0));
    // Linear weights are [out, in] in a transformers folder or a checkpoint torch saved (format: pt).
    const pytorchLayout = folder !== null || reader.metadata?.format === "pt";
    const plan = buildPlan(weights, tensors, job.rules, job.layout, { strict: !!job.strict, requireQuantized: !job.shard, source: { pytorchLayout } });
    // Said before anything is read: a run that will not do what its flags seem to ask.
    for (const w of plan.warnings) job.onWarning?.(w);
    // A --shard job records the index the merged run will have: the whole input's plan decides it.
    const whole = job.shard ? buildPlan(weights, reader.tensors, job.rules, job.layout, { strict: !!job.strict, requireQuantized: false, source: { pytorchLayout } }) : plan;
    const wholeRun = { weights, plan: whole };
    if (folder) {
      const paths = await runInFolder(job, folder, reader, plan, (p, others) => writeAll(job, reader, plan, p, pool, wholeRun, others));
      return reportOf(job, plan, paths);
    }
    const paths = outputPaths(job, plan.steps);
    const report = reportOf(job, plan, paths);
    if (job.dryRun) return report;
    await checkOutputs(paths.all, [job.input, ...new Set(reader.tensors.map((t) => t.file))], !!job.force);
    await writeAll(job, reader, plan, paths, pool, wholeRun);
    return report;
  } finally {
    await pool?.close();
    await reader.close();
  }
}

/** The tensors of the input shards job `shard` owns (shard-select.ts). */
function shardTensors(input: string, reader: TensorReader, shard: ShardSpec): readonly TensorInfo[] {
  if (!isIndexPath(input)) throw new KquantError({ file: input, what: "--shard needs a sharded input (*.safetensors.index.json)" });
  const mine = new Set(selectShards(reader.tensors.map((t) => basename(t.file)), shard));
  return reader.tensors.filter((t) => mine.has(basename(t.file)));
}

/**
 * Writes the weights, the index and the manifest at `paths`. `whole`: the weights and plan of the
 * whole input (a --shard job's plan has its own tensors only), which decide the index. `others`:
 * the texts of the other files the run writes beside them (a folder's config.json), hashed into
 * the manifest with the index's.
 */
async function writeAll(
  job: QuantizeJob,
  reader: TensorReader,
  plan: Plan,
  paths: OutputPaths,
  pool: WorkerPool | null,
  whole: { weights: string; plan: Plan },
  others: Record<string, string> = {},
): Promise<void> {
  const { files } = paths;
  const manifest = newManifest((job.layout ?? KQUANT_LAYOUT).name, basename(job.input), reader.metadata, job.options, plan.steps);
  // The index of the whole run (a --shard job's merge-index writes it, the same).
  const wholeFiles = job.shard
    ? outputPaths({ input: whole.weights, output: paths.output, tag: job.tag, ...(paths.folder ? { folder: { out: paths.folder.out, staging: paths.folder.staging } } : {}) }, whole.plan.steps).files
    : files;
  const indexText = isIndexPath(paths.output) ? shardIndexText(shardIndexOf(wholeFiles)) : null;
  // Known before any weight is written (all of it is planned), so each shard's __metadata__ vouches for them.
  const texts = { ...(indexText !== null ? { [basename(paths.output)]: indexText } : {}), ...others };
  manifest.files = {};
  for (const [name, text] of Object.entries(texts)) manifest.files[name] = await hashHex(Buffer.from(text, "utf8"));
  manifest.files_hash = HASH_ALGORITHM;
  const shardManifest = (f: OutputFile): Manifest => ({
    ...manifest,
    tensors: Object.fromEntries(f.steps.map((s) => [s.source.name, manifest.tensors[s.source.name]!])),
  });
  const metadataOf = (f: OutputFile) => ({ ...(reader.metadata ?? {}), [MANIFEST_KEY]: JSON.stringify(shardManifest(f)) });

  const totalBytes = plan.steps.reduce((n, s) => n + s.source.byteLength, 0);
  const progress = await startProgress(totalBytes, { quiet: job.quiet });
  // Every writer stays a temp file until all data is in, so a failure anywhere leaves no output at all.
  const writers: SafetensorsWriter[] = [];
  try {
    const items: StreamItem[] = [];
    for (const f of files) {
      const writer = await createSafetensorsWriter(f.path, f.steps.flatMap(writtenTensorsOf), metadataOf(f), { fsync: job.fsync });
      writers.push(writer);
      for (const step of f.steps) items.push({ step, writer });
    }
    const ctx = { reader, items, records: manifest.tensors, progress, allowNonFinite: !!job.allowNonFinite };
    if (pool) await streamParallel({ ...ctx, pool });
    else await streamInProcess(ctx);
    for (let i = 0; i < files.length; i++) await writers[i]!.finish(metadataOf(files[i]!));
  } catch (err) {
    await Promise.all(writers.map((w) => w.abort()));
    throw err;
  } finally {
    progress.stop();
  }
  if (job.shard) {
    await writeFileAtomic(paths.manifest, `${JSON.stringify(partOf(job.shard, reader, paths.output, files, manifest), null, 2)}\n`, { fsync: job.fsync });
    return;
  }
  if (paths.index !== null && indexText !== null) await writeFileAtomic(paths.index, indexText, { fsync: job.fsync });
  await writeFileAtomic(paths.manifest, `${JSON.stringify(manifest, null, 2)}\n`, { fsync: job.fsync });
}

/** The index of the data files `files`: each written tensor's file, and their total size. */
function shardIndexOf(files: readonly OutputFile[]): ShardIndex {
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const f of files) {
    for (const t of f.steps.flatMap(writtenTensorsOf)) {
      weightMap[t.name] = basename(f.path);
      totalSize += byteLengthOf(t.dtype, t.shape);
    }
  }
  return { metadata: { total_size: totalSize }, weight_map: weightMap };
}

function partOf(shard: ShardSpec, reader: TensorReader, output: string, files: OutputFile[], manifest: Manifest): PartManifest {
  const names = reader.tensors.map((t) => t.name);
  return {
    format: PART_FORMAT,
    part: shard.index,
    parts: shard.count,
    index: basename(output),
    input: {
      file: basename(reader.path),
      shards: [...new Set(reader.tensors.map((t) => basename(t.file)))].sort(),
      tensor_count: names.length,
      tensors_sha256: namesDigest(names),
    },
    shards: files.map((f) => ({
      input: basename(f.steps[0]!.source.file),
      output: basename(f.path),
      stored: f.steps.flatMap(writtenTensorsOf).map((t) => ({ name: t.name, bytes: byteLengthOf(t.dtype, t.shape) })),
      tensors: f.steps.map((s) => s.source.name),
    })),
    manifest,
  };
}

/**
 * Below this, starting worker isolates costs more than the work, so unless --threads or
 * KQUANT_THREADS says otherwise the run stays in-process (the bytes are the same either way).
 */
const MIN_PARALLEL_BYTES = 8 * 1024 * 1024;

/** The pool a run of `totalBytes` source bytes works on (--threads, KQUANT_THREADS, the default), or null for in-process. */
export function workerPoolFor(job: Pick<QuantizeJob, "threads" | "workerUrl">, totalBytes: number): WorkerPool | null {
  const small = totalBytes < MIN_PARALLEL_BYTES && process.env.KQUANT_THREADS === undefined;
  const threads = job.threads ?? (small ? 0 : defaultThreads());
  const url = job.workerUrl ?? DEFAULT_WORKER_URL;
  // From the TypeScript sources (tests) there is no compiled worker; the in-process loop gives the same bytes.
  if (threads < 1 || !workerAvailable(url)) return null;
  return new WorkerPool(threads, url);
}

/** The single-threaded loop: read, quantize, hash and write one tensor at a time. */
async function streamInProcess(ctx: Omit<StreamContext, "pool">): Promise<void> {
  // One source buffer for every tensor, and the kernels' scratch kept from tensor to tensor: a
  // fresh buffer per tensor left each one to the garbage collector, which let two 256 MiB sources
  // live at once (measured: 666 MiB peak on 4.25 GiB of 256 MiB tensors, over the 662 MiB bound).
  // (A tensor larger than a buffer can hold is refused by read(), with its name.)
  const largest = largestBy(ctx.items, (it) => it.step.source.byteLength)?.step.source;
  const source = largest === undefined ? undefined : tensorBuffer(largest.byteLength, largest.file, largest.name);
  const scratch = new Scratch();
  for (const { step, writer } of ctx.items) {
    const bytes = await ctx.reader.read(step.source.name, source?.subarray(0, step.source.byteLength));
    const record = hashesOf(ctx.records[step.source.name]!).hashes!;
    record.source = await hashHex(bytes);
    const stored: [string, Uint8Array][] =
      step.kind === "passthrough"
        ? [[step.output.name, bytes]]
        : storedPairs(step, quantizeTensor(step, bytes, step.source.file, { allowNonFinite: ctx.allowNonFinite, scratch }));
    for (const [name, data] of stored) {
      record.stored[name] = await hashHex(data);
      await writer.write(name, data);
    }
    ctx.progress.advance(step.source.byteLength, step.source.name);
  }
}

function storedPairs(step: Step & { kind: "quantize" }, out: StoredBytes): [string, Uint8Array][] {
  return step.written.map((t) => [t.name, writtenBytes(t, out)]);
}

/** A short human description of a spec, for the report (its mode descriptor's). */
export function describeScheme(spec: QuantSpec): string {
  return modeNamed(spec.mode).describe(spec);
}

function reportOf(job: QuantizeJob, plan: Plan, paths: OutputPaths): QuantizeReport {
  const quantized: QuantizedEntry[] = [];
  const skipped: SkippedEntry[] = [];
  for (const s of plan.steps) {
    const t = s.source;
    if (s.kind === "passthrough") {
      skipped.push({ name: t.name, reason: s.reason, dtype: t.dtype, shape: t.shape, bytes: t.byteLength });
    } else {
      quantized.push({
        name: t.name,
        mode: s.spec.mode,
        scheme: describeScheme(s.spec),
        rule: s.origin,
        source_dtype: t.dtype,
        shape: t.shape,
        bytes_before: t.byteLength,
        bytes_after: writtenTensorsOf(s).reduce((n, o) => n + byteLengthOf(o.dtype, o.shape), 0),
      });
    }
  }
  const final = (p: string) => finalPathOf(paths, p);
  return runReport({
    input: job.input,
    output: paths.folder?.out ?? paths.output,
    manifest: final(paths.manifest),
    ...(isIndexPath(paths.output) ? { shards: paths.files.map((f) => final(f.path)) } : {}),
    dryRun: !!job.dryRun,
    quantized,
    skipped,
    warnings: plan.warnings,
  });
}
