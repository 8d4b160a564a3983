/**
 * `kquant quantize MODEL_DIR --scheme NAME`: llm-compressor's model_free_ptq, folder in, folder out.
 * Every weight the reference quantizes (plan/llmc-targets.ts) goes through its kernels
 * (quant/llmc/linear.ts); the rest is copied as it is; the folder is laid out as the reference
 * lays it out (layouts/llmc-folder.ts: shards, tensor order, index, config.json with its
 * quantization_config, layouts/llmc-config.ts). Two passes: the first reads each weight to be
 * quantized once (refusals, NVFP4's global absmax), the second writes shard by shard through
 * weight-stream.ts: a shard's header is planned up front (every output tensor's name, dtype and
 * shape follow from the preset, SchemeDescriptor.planned, in save_file's order), and each weight's
 * outputs land at their planned offsets as soon as it is quantized, while the next weight is read.
 * Memory stays within a few blocks per worker (weight-stream.ts's ring), plus a weight found
 * non-finite, read whole once more for its refusal's wording.
 * Nothing is written when anything is refused.
 */
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { KquantError } from "../../errors.js";
import { writeFileAtomic } from "../../formats/atomic.js";
import { CONFIG_FILE, copyEntries, isFolder, openModelFolder, WEIGHT_FILES } from "../../formats/folder.js";
import { asUserError } from "../../formats/io.js";
import { openTensors } from "../../formats/open.js";
import { byteLengthOf } from "../../formats/dtypes.js";
import { createSafetensorsWriter } from "../../formats/safetensors-writer.js";
import type { PlannedTensor, TensorInfo, TensorReader } from "../../formats/types.js";
import { llmcQuantizationConfig } from "../../layouts/llmc-config.js";
import { llmcConfigText, llmcIndexText, llmcShardSources, saveFileOrder } from "../../layouts/llmc-folder.js";
import { LLMC_DTYPE_OF, schemeNamed, type SchemeDescriptor } from "../../modes/llmc-schemes.js";
import { compileGlob } from "../../plan/glob.js";
import { llmcActions, llmcIgnoreMatcher, splitTensorName, type LlmcAction } from "../../plan/llmc-targets.js";
import { llmcRefusal, llmcValueRefusal } from "../../quant/llmc/linear.js";
import { globalScale } from "../../quant/llmc/qparams.js";
import type { WorkerPool } from "../workers.js";
import { inStaging } from "./folder-run.js";
import { llmcWeightOf, RefusedValues, rowBlocks, type FormatJob } from "./format-slice.js";
import { ringBuffers, streamTensors, type StreamTensor } from "./weight-stream.js";
import { splitView, type SplitView } from "./split-view.js";
import { workerPoolFor } from "./run-quantize.js";
import { writeFolderManifest } from "../folder-manifest.js";
import { manifestPathFor } from "./outputs.js";
import { schemeRunReport, type SchemeKept, type SchemeReport } from "./scheme-report.js";

/** What a --scheme run needs. */
export interface SchemeJob {
  /** The model folder (config.json + model.safetensors or its index). */
  input: string;
  /** The output folder (default: `<input>-<scheme lower case>`). */
  output?: string;
  /** The preset's name, any case (written as given in quantization_config, as model_free_ptq does). */
  scheme: string;
  /** model_free_ptq's ignore list: module names, `re:` patterns. */
  ignore?: readonly string[];
  /** Tensor-name globs never quantized: a weight `M.weight` they match puts `M` in the ignore list. */
  exclude?: readonly string[];
  /** A weight the format cannot hold fails the run instead of staying float. */
  strict?: boolean;
  force?: boolean;
  /** Report what the run would write, write nothing (the weights are still read: refusals, NVFP4's absmax). */
  dryRun?: boolean;
  fsync?: boolean;
  /** Worker threads (default: KQUANT_THREADS or one per core, at most 4; 0: none); the bytes are the same. */
  threads?: number;
  /** The worker script (tests: a bundle of worker-entry.ts). */
  workerUrl?: URL;
}

export type { SchemeKept, SchemeReport } from "./scheme-report.js";

/** The refusal of a weight's values (its first non-finite value), a block of rows at a time (no whole float32 copy). */
function valuesRefusal(info: TensorInfo, bytes: Uint8Array): string | null {
  const [rows, cols] = info.shape as [number, number];
  const rowBytes = cols * (info.dtype === "F32" ? 4 : 2);
  const per = Math.max(1, Math.floor((4 << 20) / Math.max(1, rowBytes)));
  for (let r = 0; r < rows; r += per) {
    const n = Math.min(per, rows - r);
    const why = llmcValueRefusal(llmcWeightOf(info.dtype, n, cols, bytes.subarray(r * rowBytes, (r + n) * rowBytes)).values, r * cols);
    if (why !== null) return why;
  }
  return null;
}

/** Why a weight the reference would quantize stays float, from its dtype and shape (null: it can be quantized). */
function shapeRefusal(s: SchemeDescriptor, info: TensorInfo): string | null {
  if (LLMC_DTYPE_OF[info.dtype] === undefined) return `dtype ${info.dtype} is not a float weight model_free_ptq quantizes (F32, BF16, F16)`;
  return llmcRefusal(s.preset, info.shape);
}

/** The ignore list with `exclude`'s weights' modules added (exact names, in tensor order). */
function ignoreOf(job: SchemeJob, names: readonly string[]): string[] {
  const ignore = [...(job.ignore ?? [])];
  const globs = (job.exclude ?? []).map(compileGlob);
  const ignored = llmcIgnoreMatcher(ignore);
  for (const n of names) {
    const { module, param } = splitTensorName(n);
    if (param === "weight" && globs.some((g) => g.test(n)) && !ignored(module) && !ignore.includes(module)) ignore.push(module);
  }
  return ignore;
}

/** Runs model_free_ptq's equivalent on `job.input`; throws a KquantError (nothing written) on bad input. */
export async function runScheme(job: SchemeJob): Promise<SchemeReport> {
  const scheme = schemeNamed(job.scheme);
  if (!(await isFolder(job.input))) {
    throw new KquantError({ file: job.input, what: "--scheme takes a model folder (config.json beside model.safetensors or its index), as model_free_ptq does" });
  }
  const folder = await openModelFolder(job.input);
  if ("quantization_config" in folder.config) {
    throw new KquantError({ file: join(job.input, CONFIG_FILE), what: "the model already has a quantization_config", hint: "--scheme quantizes float checkpoints" });
  }
  const reader = await openTensors(folder.weights);
  const pool = job.dryRun ? null : workerPoolFor(job, reader.tensors.reduce((n, t) => n + t.byteLength, 0));
  try {
    return await runOn(job, scheme, folder, reader, pool);
  } finally {
    await pool?.close();
    await reader.close();
  }
}

async function runOn(job: SchemeJob, scheme: SchemeDescriptor, folder: Awaited<ReturnType<typeof openModelFolder>>, fileReader: TensorReader, pool: WorkerPool | null): Promise<SchemeReport> {
  const reader = splitView(fileReader);
  const infos = new Map(reader.tensors.map((t) => [t.name, t]));
  const names = reader.tensors.map((t) => t.name);
  const tensorGroup = scheme.preset.weights!.strategy === "tensor_group";
  const ignore = ignoreOf(job, names);

  const firstActions = llmcActions(names, ignore, false);
  // Without NVFP4's global scale to find, the values need no pass of their own: the blocks refuse a
  // non-finite value as they quantize (RefusedValues), and only then are the values checked first
  // (the weight kept float, its module in ignore) and the folder written again. --strict names the
  // first refusal in tensor order, so a shape refusal there takes the two passes.
  if (!tensorGroup && !job.dryRun) {
    const shapeKept = (await firstPass(scheme, reader, infos, firstActions, false, pool)).kept;
    if (!job.strict || shapeKept.length === 0) {
      try {
        return await write(shapeKept, new Map(), true);
      } catch (err) {
        if (!(err instanceof RefusedValues)) throw err;
      }
    }
  }
  const { kept, absmax } = await firstPass(scheme, reader, infos, firstActions, true, pool);
  return write(kept, absmax, false);

  async function write(kept: readonly SchemeKept[], absmax: ReadonlyMap<string, number>, checkValues: boolean): Promise<SchemeReport> {
    if (kept.length > 0 && job.strict) {
      const k = kept[0]!;
      throw new KquantError({ file: infos.get(k.name)!.file, tensor: k.name, what: `${scheme.name}: ${k.reason}` });
    }
    const ignoreAll = [...ignore, ...kept.map((k) => splitTensorName(k.name).module)];
    const actions = llmcActions(names, ignoreAll, tensorGroup);
    const quantized = [...actions].filter(([, a]) => a.kind === "quantize").map(([n]) => n);
    if (quantized.length === 0 && kept.length > 0) {
      const k = kept[0]!;
      throw new KquantError({ file: job.input, what: `no weight can take ${scheme.name}, nothing written (${k.name}: ${k.reason})` });
    }

    const shardOf = reader.tensors.map((t) => [t.name, basename(t.file)] as const);
    const shards = [...new Set(shardOf.map(([, s]) => s))];
    const sources = llmcShardSources(shardOf, shards, tensorGroup);
    const out = job.output ?? `${folder.dir.replace(/[\\/]+$/, "")}-${scheme.name.toLowerCase()}`;
    const others = folder.others.filter((n) => !(WEIGHT_FILES as readonly string[]).includes(n));
    const qc = llmcQuantizationConfig(scheme.preset, job.scheme, ignoreAll, quantized.length > 0);
    const report = schemeRunReport({
      input: job.input,
      output: out,
      manifest: manifestPathFor(join(out, WEIGHT_FILES[0])),
      dryRun: !!job.dryRun,
      scheme,
      format: String(qc.format),
      givenIgnore: job.ignore ?? [],
      ignore: ignoreAll,
      kept: [...kept],
      tensors: reader.tensors,
      actions,
      shards,
    });
    if (job.dryRun) return report;
    const weightMap: Record<string, string> = {};
    let totalSize = 0;

    const plans = shards.map((shard) => {
      const tensors = sources.get(shard)!.map((name) => streamTensorOf(scheme, infos.get(name)!, actions.get(name)!, absmax, checkValues));
      return { shard, tensors, planned: tensors.flatMap((t) => t.planned) };
    });
    const ring = ringBuffers(plans.flatMap((p) => p.tensors), pool);

    await inStaging(out, folder.dir, !!job.force, async (staging) => {
      for (const { shard, tensors, planned } of plans) {
        // save_file's order interleaves the weights' tensors: each lands at its planned offset as its weight is done.
        const writer = await createSafetensorsWriter(join(staging, shard), saveFileOrder(planned), {}, { fsync: !!job.fsync });
        try {
          await streamTensors(reader, tensors.map((t) => ({ ...t, writer })), pool, ring);
          await writer.finish();
        } catch (err) {
          await writer.abort();
          throw err;
        }
        for (const t of planned) {
          weightMap[t.name] = shard;
          totalSize += byteLengthOf(t.dtype, t.shape);
        }
      }
      const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)));
      await writeFileAtomic(join(staging, WEIGHT_FILES[0]), llmcIndexText(totalSize, sorted), { fsync: !!job.fsync });
      const configPath = join(folder.dir, CONFIG_FILE);
      const configText = await readFile(configPath, "utf8").catch((err: unknown) => {
        throw asUserError(err, configPath);
      });
      await writeFileAtomic(join(staging, CONFIG_FILE), llmcConfigText(configText, configPath, qc), { fsync: !!job.fsync });
      await copyEntries(folder.dir, staging, others);
      const options = { scheme: job.scheme, ignore: job.ignore ?? [], exclude: job.exclude ?? [], strict: !!job.strict };
      await writeFolderManifest(staging, WEIGHT_FILES[0], { writer: "llm-compressor model_free_ptq", options, source: basename(folder.dir) }, { fsync: !!job.fsync });
    });
    return report;
  }
}

/**
 * Pass 1: the weights to quantize the format cannot hold (their dtype or shape, then their values:
 * kept float, their modules added to ignore), in tensor order, and each one's absmax (NVFP4's
 * global scale). With `values`, they stream through weight-stream.ts like pass 2 (blocks' absmaxes
 * on the pool's workers); a weight found non-finite is read once more here for its refusal's
 * wording. Without, only dtypes and shapes are checked.
 */
async function firstPass(
  scheme: SchemeDescriptor,
  reader: SplitView,
  infos: ReadonlyMap<string, TensorInfo>,
  actions: ReadonlyMap<string, LlmcAction>,
  values: boolean,
  pool: WorkerPool | null,
) {
  const toQuantize = [...actions].filter(([, a]) => a.kind === "quantize").map(([n]) => infos.get(n)!);
  const why = new Map(toQuantize.map((info) => [info.name, shapeRefusal(scheme, info)]));
  const absmax = new Map<string, number>();
  if (values) {
    const nonFinite = new Set<string>();
    // Each block's absmax comes as it is done: the weight's is their max, NaN once any block is non-finite.
    const sink = {
      async writeAt(name: string, _at: number, bytes: Uint8Array): Promise<void> {
        const blocks = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        let m = absmax.get(name) ?? 0;
        for (let i = 0; i < bytes.length; i += 8) m = Math.max(m, blocks.getFloat64(i, true));
        absmax.set(name, m);
        if (Number.isNaN(m)) nonFinite.add(name);
      },
    };
    const tensors = toQuantize
      .filter((info) => why.get(info.name) === null)
      .map((info): StreamTensor => {
        const [rows, cols] = info.shape as [number, number];
        const blocks = rowBlocks(rows, 1, info.byteLength).length;
        return { name: info.name, file: info.file, byteLength: info.byteLength, format: { job: { kind: "absmax", dtype: info.dtype, cols }, rows, rowAlign: 1 }, outputs: [{ name: info.name, byteLength: 8 * blocks }], writer: sink };
      });
    await streamTensors(reader, tensors, pool, ringBuffers(tensors, pool));
    for (const name of nonFinite) {
      absmax.delete(name);
      why.set(name, valuesRefusal(infos.get(name)!, await reader.read(name)));
    }
  }
  const kept: SchemeKept[] = toQuantize.flatMap((info) => (why.get(info.name) === null ? [] : [{ name: info.name, reason: why.get(info.name)! }]));
  return { kept, absmax };
}

/** The tensors `info` is written as: itself (copied), or a quantized weight's (SchemeDescriptor.planned). */
function writtenOf(scheme: SchemeDescriptor, info: TensorInfo, action: LlmcAction): PlannedTensor[] {
  if (action.kind === "copy") return [{ name: info.name, dtype: info.dtype, shape: info.shape }];
  const [rows, cols] = info.shape as [number, number];
  return scheme.planned(splitTensorName(info.name).module, info.dtype, rows, cols);
}

/** How `info` streams (weight-stream.ts), its writer aside: copied, or its rows through the preset's kernel (NVFP4: with its fused set's global scale). */
function streamTensorOf(scheme: SchemeDescriptor, info: TensorInfo, action: LlmcAction, absmax: ReadonlyMap<string, number>, checkValues: boolean): Omit<StreamTensor, "writer"> & { planned: PlannedTensor[] } {
  const planned = writtenOf(scheme, info, action);
  const outputs = planned.map((t) => ({ name: t.name, byteLength: byteLengthOf(t.dtype, t.shape) }));
  const base = { name: info.name, file: info.file, byteLength: info.byteLength, outputs, planned };
  if (action.kind === "copy") return { ...base, format: null };
  const w = scheme.preset.weights!;
  const gs = w.strategy === "tensor_group" ? globalScale(action.globalSet.reduce((m, n) => Math.max(m, absmax.get(n)!), 0), LLMC_DTYPE_OF[info.dtype]!) : undefined;
  const [rows, cols] = info.shape as [number, number];
  const job: FormatJob = { kind: "llmc", preset: scheme.preset.name, dtype: info.dtype, cols, ...(gs !== undefined ? { globalScale: gs } : {}), ...(checkValues ? { checkValues } : {}) };
  // FP8_BLOCK's blocks span 128 rows; 32 rows keep every packed zero-point word within a block.
  return { ...base, format: { job, rows, rowAlign: w.strategy === "block" ? 128 : 32 } };
}
