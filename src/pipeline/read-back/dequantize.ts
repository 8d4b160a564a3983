/**
 * Reading a kquant output back: its manifest, what each record's stored tensors must look like,
 * one record turned back into float32, and `kquant dequantize` (one tensor in memory at a time
 * for safetensors; .npz members are gathered for the zip writer).
 */
import { basename, join } from "node:path";
import { stat } from "node:fs/promises";
import { copyEntries, isFolder, openModelFolder, WEIGHT_FILES, writeConfig } from "../../formats/folder.js";
import { inStaging } from "../quantize/folder-run.js";
import { KquantError } from "../../errors.js";
import { byteLengthOf } from "../../formats/dtypes.js";
import type { WriteOptions } from "../../formats/atomic.js";
import { writeNpz, type NpzEntry } from "../../formats/npz.js";
import { openTensors } from "../../formats/open.js";
import { createSafetensorsWriter } from "../../formats/safetensors-writer.js";
import type { PlannedTensor, StDType, TensorInfo, TensorReader } from "../../formats/types.js";
import { compileGlob, matchesAny } from "../../plan/glob.js";
import type { Mode } from "../../plan/spec.js";
import { layoutOf, manifestFromMetadata, storedOf, type ExpectedTensor, type Manifest, type TensorRecord } from "../manifest.js";
import { checkOutputs } from "../quantize/outputs.js";
import { outputKindOf } from "../output-kinds.js";
import type { WorkerPool } from "../workers.js";
import { inFlight, inOrder, readBackPool, recordDequantizer, type ReadBackThreads } from "./parallel-read-back.js";
import type { FloatOut, StoredParts } from "./record-values.js";

/**
 * The manifest of a kquant output, or null if it has none. A sharded output keeps one manifest per
 * shard (each naming its own tensors); they are merged in shard order.
 */
export async function readManifest(reader: TensorReader): Promise<Manifest | null> {
  const files = [...new Set(reader.tensors.map((t) => t.file))];
  const parse = (metadata: Readonly<Record<string, string>> | null, file: string): Manifest | null => manifestFromMetadata(metadata, file);
  if (files.length <= 1) return parse(reader.metadata, files[0] ?? reader.path);
  const found: Manifest[] = [];
  for (const file of files) {
    const shard = await openTensors(file);
    let m: Manifest | null;
    try {
      m = parse(shard.metadata, file);
    } finally {
      await shard.close();
    }
    if (m !== null) found.push(m);
  }
  if (found.length === 0) return null;
  return { ...found[0]!, tensors: Object.assign({}, ...found.map((m) => m.tensors)) as Manifest["tensors"] };
}

export { expectedTensors, geometryOf, storedOf, type ExpectedTensor } from "../manifest.js";


const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Checks the file's tensors against what `rec` expects; throws naming the first disagreement. */
export function checkStoredInfo(file: string, name: string, expected: readonly ExpectedTensor[], infos: ReadonlyMap<string, TensorInfo>): void {
  for (const e of expected) {
    const info = infos.get(e.name);
    if (info === undefined) throw new KquantError({ file, tensor: name, what: `its ${e.role} tensor "${e.name}" is missing` });
    if (info.dtype !== e.dtype || !sameShape(info.shape, e.shape)) {
      throw new KquantError({
        file,
        tensor: name,
        what: `${e.role} tensor "${e.name}" is ${info.dtype} [${info.shape}], the manifest needs ${e.dtype} [${e.shape}]`,
      });
    }
  }
}

const OUT_DTYPE: Record<FloatOut, StDType> = { f32: "F32", f16: "F16", bf16: "BF16" };

export interface DequantizeJob extends WriteOptions, ReadBackThreads {
  input: string;
  /** A .safetensors or .npz file; for a model folder input, a path without either extension writes a model folder. */
  output: string;
  /** Default: f32 for a file, each tensor's source dtype for a folder. */
  dtype?: FloatOut;
  force?: boolean;
  /** Only tensors whose source name matches one of these globs. */
  filter?: string[];
}

export interface DequantizeReport {
  input: string;
  output: string;
  dtype: StDType;
  /** A kquant mode, `mlx_<mode>` for an MLX folder's weights, `scheme_<PRESET>` for a --scheme folder's. */
  dequantized: { name: string; mode: Mode | `mlx_${string}` | `scheme_${string}`; shape: number[] }[];
  passthrough: { name: string; dtype: StDType; shape: number[] }[];
  bytes_written: number;
}

/** One record's source name, record, and stored tensors, in manifest order. */
export interface ManifestEntry {
  name: string;
  record: TensorRecord;
  expected: ExpectedTensor[];
}

/** The manifest's records in order, each checked against the file's tensors (throws on the first problem). */
export function checkedEntries(reader: TensorReader, manifest: Manifest): ManifestEntry[] {
  const layout = layoutOf(manifest);
  const infos = new Map(reader.tensors.map((t) => [t.name, t]));
  const entries: ManifestEntry[] = [];
  const claimed = new Set<string>();
  for (const [name, record] of Object.entries(manifest.tensors)) {
    const expected = storedOf(name, record, layout);
    checkStoredInfo(reader.path, name, expected, infos);
    for (const e of expected) claimed.add(e.name);
    entries.push({ name, record, expected });
  }
  const stray = reader.tensors.find((t) => !claimed.has(t.name));
  if (stray) throw new KquantError({ file: reader.path, tensor: stray.name, what: "is in the file but not in the kquant manifest" });
  return entries;
}

/** A record's stored tensors by role, read into `buffer(bytes)` if given. */
export async function readParts(reader: TensorReader, expected: readonly ExpectedTensor[], buffer?: (bytes: number) => Uint8Array): Promise<StoredParts> {
  const get = async (role: ExpectedTensor["role"]) => {
    const e = expected.find((x) => x.role === role);
    return e ? reader.read(e.name, buffer?.(byteLengthOf(e.dtype, e.shape))) : undefined;
  };
  const values = (await get("values"))!;
  const scale = (await get("scale"))!;
  const zero = await get("zero");
  return { values, scale, ...(zero ? { zero } : {}) };
}

/** The float dtype a folder keeps for a tensor whose source was `dtype` (F64 and others: f32). */
const FLOAT_OF_SOURCE: Partial<Record<StDType, FloatOut>> = { F32: "f32", F16: "f16", BF16: "bf16" };
/** transformers' name of each output dtype (config.json's dtype / torch_dtype). */
const TORCH_DTYPE: Record<FloatOut, string> = { f32: "float32", f16: "float16", bf16: "bfloat16" };
/** kquant's manifests beside the weights (model.safetensors.json, model.safetensors.index.json.json): a float folder has none. */
const MANIFEST_FILE = /\.safetensors(\.index\.json)?\.json$/;

/**
 * A float model folder's config.json from a quantized one's: no quantization_config (transformers,
 * compressed-tensors) or quantization (MLX), and the dtype named when --dtype chose one.
 */
export function floatConfig(config: Readonly<Record<string, unknown>>, dtype: FloatOut | undefined): Record<string, unknown> {
  const { quantization_config: _q, quantization: _m, ...rest } = config;
  if (dtype === undefined) return rest;
  const named: Record<string, unknown> = { ...rest, dtype: TORCH_DTYPE[dtype] };
  if ("torch_dtype" in rest) named.torch_dtype = TORCH_DTYPE[dtype];
  return named;
}

const isFile = (path: string) => stat(path).then((st) => st.isFile(), () => false);

/** Does `output` name a model folder (a folder input, and no file extension dequantize writes)? */
async function writesFolder(job: DequantizeJob): Promise<boolean> {
  if (!(await isFolder(job.input))) return false;
  return !/\.(safetensors|npz)$/i.test(job.output) && !(await isFile(job.output));
}

export async function runDequantize(job: DequantizeJob): Promise<DequantizeReport> {
  if (await writesFolder(job)) return dequantizeToFolder(job);
  return dequantizeToFile(job, job.output);
}

/**
 * `kquant dequantize MODEL_DIR -o FLOAT_DIR`: model.safetensors with every tensor float (each in its
 * source dtype unless --dtype says), config.json without its quantization, every other file copied
 * (kquant's manifests left out); transformers and mlx_lm load it as the float model.
 */
async function dequantizeToFolder(job: DequantizeJob): Promise<DequantizeReport> {
  const folder = await openModelFolder(job.input);
  let report: DequantizeReport | undefined;
  await inStaging(job.output, folder.dir, !!job.force, async (staging) => {
    report = await dequantizeToFile({ ...job, input: folder.weights, force: false }, join(staging, WEIGHT_FILES[1]), true);
    await writeConfig(staging, floatConfig(folder.config, job.dtype), { fsync: !!job.fsync });
    await copyEntries(folder.dir, staging, folder.others.filter((n) => !MANIFEST_FILE.test(n)));
  });
  return { ...report!, input: job.input, output: job.output };
}

async function dequantizeToFile(job: DequantizeJob, output: string, sourceDtypes = false): Promise<DequantizeReport> {
  const toNpz = outputKindOf("dequantize", output).format === "npz";
  if (toNpz && job.dtype === "bf16") throw new KquantError({ file: job.output, what: "numpy has no bfloat16; write bf16 to .safetensors" });
  const reader = await openTensors(job.input);
  let pool: WorkerPool | null = null;
  try {
    const manifest = await readManifest(reader);
    if (manifest === null) {
      // An MLX folder (mlx_lm.convert's, or kquant quantize --mlx's) reads back through its config.json.
      const { mlxFolderParams, runMlxDequantize } = await import("./mlx-folder.js");
      const params = await mlxFolderParams(job.input);
      // (`output` is the file this call writes: in a folder run, the staging folder's weights.)
      if (params !== null) return await runMlxDequantize({ ...job, output }, reader, params, toNpz);
      // A --scheme folder (llm-compressor's model_free_ptq, or kquant quantize --scheme) through its quantization_config.
      const { schemeFolderOf, runSchemeDequantize } = await import("./scheme-folder.js");
      const scheme = await schemeFolderOf(job.input);
      if (scheme !== null) return await runSchemeDequantize({ ...job, output }, reader, scheme, toNpz);
      throw new KquantError({ file: job.input, what: "no kquant manifest in __metadata__, no MLX quantization and no llm-compressor preset's quantization_config in config.json; not a kquant output" });
    }
    const patterns = (job.filter ?? []).map(compileGlob);
    const layout = layoutOf(manifest);
    const entries = checkedEntries(reader, manifest).filter((e) => patterns.length === 0 || matchesAny(e.name, patterns));
    if (entries.length === 0) throw new KquantError({ file: job.input, what: `no tensor matches ${job.filter!.join(", ")}` });
    // Each tensor's float dtype: --dtype, else (a folder) its source's, else f32.
    const floatOf = (e: ManifestEntry): FloatOut => job.dtype ?? (sourceDtypes ? (FLOAT_OF_SOURCE[e.record.source_dtype] ?? "f32") : "f32");
    const firstQuantized = entries.find((e) => e.record.mode !== "passthrough");
    const outDtype = OUT_DTYPE[firstQuantized ? floatOf(firstQuantized) : (job.dtype ?? "f32")];
    const planned: PlannedTensor[] = entries.map((e) => ({
      name: e.name,
      dtype: e.record.mode === "passthrough" ? e.record.source_dtype : OUT_DTYPE[floatOf(e)],
      shape: e.record.shape,
    }));
    if (toNpz) {
      const bad = planned.find((p) => p.dtype === "BF16" || p.dtype.startsWith("F8") || p.dtype.startsWith("F4") || p.dtype.startsWith("F6"));
      if (bad) throw new KquantError({ file: job.output, tensor: bad.name, what: `numpy has no ${bad.dtype} dtype; write to .safetensors instead` });
    }
    await checkOutputs([output], [job.input, ...new Set(reader.tensors.map((t) => t.file))], !!job.force);

    const report: DequantizeReport = { input: job.input, output, dtype: outDtype, dequantized: [], passthrough: [], bytes_written: 0 };
    const tensorBytes = async (e: ManifestEntry): Promise<Uint8Array> => {
      if (e.record.mode === "passthrough") {
        report.passthrough.push({ name: e.name, dtype: e.record.source_dtype, shape: e.record.shape });
        return reader.read(e.name);
      }
      report.dequantized.push({ name: e.name, mode: e.record.mode, shape: e.record.shape });
      const outBytes = byteLengthOf(OUT_DTYPE[floatOf(e)], e.record.shape);
      // A layout that re-encodes is read back as its runtime reads it; either way on the workers.
      if (layout.dequantize) {
        const written: [string, Uint8Array][] = [];
        for (const x of e.expected) written.push([x.name, await reader.read(x.name, dequantizer.buffer(byteLengthOf(x.dtype, x.shape)))]);
        return dequantizer.layout(layout.name, e.name, e.record, written, floatOf(e), outBytes);
      }
      return dequantizer(e.record, await readParts(reader, e.expected, dequantizer.buffer), floatOf(e), outBytes);
    };
    // Tensors are dequantized a few at a time (on the workers, while the next are read) and written in order.
    // What a record holds in memory while it is dequantized: its stored tensors and its output.
    const weigh = (e: ManifestEntry) => e.expected.reduce((m, x) => m + byteLengthOf(x.dtype, x.shape), 0) + byteLengthOf(OUT_DTYPE[floatOf(e)], e.record.shape);
    pool = readBackPool(job, entries.reduce((n, e) => n + weigh(e), 0));
    const dequantizer = recordDequantizer(pool);
    // `write` keeps the bytes (true) or is done with them, and their memory is reused.
    const each = (write: (e: ManifestEntry, bytes: Uint8Array) => Promise<boolean>) =>
      inOrder(entries, inFlight(pool, entries, weigh), tensorBytes, async (bytes, e) => {
        const kept = await write(e, bytes);
        report.bytes_written += bytes.length;
        if (!kept) dequantizer.done(bytes);
      });

    if (toNpz) {
      const members: NpzEntry[] = [];
      await each(async (e, bytes) => {
        const p = planned[entries.indexOf(e)]!;
        // The zip writer keeps every member until the end: the member keeps its memory (never
        // handed back for reuse), rather than a copy that doubled the peak.
        members.push({ name: p.name, dtype: p.dtype, shape: p.shape, bytes });
        return true;
      });
      await writeNpz(output, members, { fsync: job.fsync });
      return report;
    }
    const metadata: Record<string, string> = { ...(manifest.source.metadata ?? {}), kquant_dequantized_from: basename(job.input) };
    const writer = await createSafetensorsWriter(output, planned, metadata, { fsync: job.fsync });
    try {
      await each(async (e, bytes) => {
        await writer.write(e.name, bytes);
        return false;
      });
      await writer.finish();
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return report;
  } finally {
    await pool?.close();
    await reader.close();
  }
}
