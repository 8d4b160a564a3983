/**
 * `kquant quantize MODEL_DIR --mlx MODE`: the folder mlx_lm.convert writes (layouts/mlx-lm.ts holds
 * its decisions, quant/mlx the arithmetic). Each floating tensor is cast to the run's dtype (MLX's
 * astype: round to nearest even), then a weight mlx_lm quantizes goes through MLX's kernel, the
 * rest is written cast; everything lands in one `model.safetensors` in a staging folder beside the
 * output with config.json and the folder's other files, renamed into place when whole. Tensors
 * stream through weight-stream.ts (blocks of rows read into a ring of small slots, quantized on the
 * workers, their outputs written as each is done): memory stays within a few blocks per worker,
 * whatever the tensors' sizes.
 */
import { basename, join } from "node:path";
import { copyEntries, openModelFolder, writeConfig } from "../../formats/folder.js";
import { byteLengthOf, elementCountOf } from "../../formats/dtypes.js";
import { writeFileAtomic } from "../../formats/atomic.js";
import { readRegularFile } from "../../formats/io.js";
import { openTensors } from "../../formats/open.js";
import { createSafetensorsWriter, type SafetensorsWriter } from "../../formats/safetensors-writer.js";
import type { PlannedTensor, TensorInfo } from "../../formats/types.js";
import { KquantError } from "../../errors.js";
import { MLX_LM_MODEL_CARD, mlxFloatOf, mlxLmAction, mlxLmConfig, mlxLmDtype, mlxLmIndexText, mlxLmParams, paramsOf, ST_OF_MLX, type MlxLmParams, type MlxLmRun } from "../../layouts/mlx-lm.js";
import { mlxScalesDtype } from "../../modes/mlx.js";
import type { MlxFloat } from "../../quant/mlx/floats.js";
import { inStaging } from "./folder-run.js";
import type { FormatJob } from "./format-slice.js";
import { ringBuffers, streamTensors, type StreamTensor } from "./weight-stream.js";
import { workerPoolFor } from "./run-quantize.js";
import { defaultFolderOutput, manifestPathFor } from "./outputs.js";
import { writeFolderManifest } from "../folder-manifest.js";
import { runReport, type QuantizedEntry, type QuantizeReport, type SkippedEntry } from "./run-report.js";

/** What `--mlx` asks for. */
export interface MlxJob {
  /** The model folder (config.json + model.safetensors or a sharded index). */
  input: string;
  /** The output folder (default `<input>-mlx-<mode>[-b<bits>][-g<group>]`). */
  output?: string;
  mode: string;
  bits?: number;
  groupSize?: number;
  /** mlx_lm's --dtype. */
  dtype?: string;
  force?: boolean;
  dryRun?: boolean;
  fsync?: boolean;
  /** Worker threads (default: KQUANT_THREADS or one per core, at most 4; 0: none); the bytes are the same. */
  threads?: number;
  /** The worker script (tests: a bundle of worker-entry.ts). */
  workerUrl?: URL;
}

/** What a `--mlx` run wrote (or would write). */
export interface MlxReport {
  input: string;
  output: string;
  dry_run: boolean;
  quantization: MlxLmParams;
  /** The dtype floating tensors were cast to, null when each kept its own. */
  dtype: MlxFloat | null;
  /** Source tensors quantized, kept (cast), and dropped (mlx_lm's sanitize). */
  quantized: number;
  kept: number;
  dropped: number;
  bytes_before: number;
  bytes_after: number;
  /** Tensor by tensor, the report every quantize run gives (run-report.ts), which the CLI presents. */
  report: QuantizeReport;
}

interface Step {
  source: TensorInfo;
  action: "quantize" | "keep";
  /** Why a kept tensor is not quantized. */
  reason: string | null;
  /** The dtype the source is cast to (null: its bytes as they are). */
  to: MlxFloat | null;
  written: PlannedTensor[];
}

const mlxOf = (t: TensorInfo): MlxFloat | null => mlxFloatOf(t.dtype);

function planStep(t: TensorInfo, params: MlxLmRun, dtype: MlxFloat | null, config: Readonly<Record<string, unknown>>): Step | SkippedEntry {
  const { action, reason } = mlxLmAction(t.name, t.shape, params.group_size, config);
  if (action === "drop") return { name: t.name, reason: reason!, dtype: t.dtype, shape: t.shape, bytes: t.byteLength, bytes_after: 0 };
  const own = mlxOf(t);
  const to = own === null ? null : (dtype ?? own);
  const kept = (why: string): Step => ({ source: t, action: "keep", reason: why, to, written: [{ name: t.name, dtype: to === null ? t.dtype : ST_OF_MLX[to], shape: t.shape }] });
  if (action === "keep") return kept(reason!);
  if (to === null) return kept(`${t.dtype} is not a float weight MLX quantizes (copied)`);
  const base = t.name.slice(0, -".weight".length);
  const [rows, cols] = t.shape as [number, number];
  const groups = [rows, cols / params.group_size];
  const written: PlannedTensor[] = [
    { name: `${base}.weight`, dtype: "U32", shape: [rows, (cols * params.bits) / 32] },
    { name: `${base}.scales`, dtype: mlxScalesDtype(params.descriptor, ST_OF_MLX[to]), shape: groups },
  ];
  if (params.descriptor.biases) written.push({ name: `${base}.biases`, dtype: ST_OF_MLX[to], shape: groups });
  return { source: t, action: "quantize", reason: null, to, written };
}

/** How a step streams (weight-stream.ts): its bytes as they are, cast (MLX's astype), or quantized, a block of rows at a time. */
function streamTensorOf(step: Step, params: MlxLmRun, writer: SafetensorsWriter): StreamTensor {
  const t = step.source;
  const outputs = step.written.map((w) => ({ name: w.name, byteLength: byteLengthOf(w.dtype, w.shape) }));
  const base = { name: t.name, file: t.file, byteLength: t.byteLength, outputs, writer };
  const own = mlxOf(t);
  if (step.to === null || (step.action === "keep" && own === step.to)) return { ...base, format: null };
  const cols = t.shape.length === 0 ? 1 : t.shape[t.shape.length - 1]!;
  const rows = cols === 0 ? 0 : elementCountOf(t.shape)! / cols;
  const job: FormatJob =
    step.action === "keep"
      ? { kind: "cast", own: own!, to: step.to, cols }
      : { kind: "mlx", mode: params.mode, bits: params.bits, groupSize: params.group_size, own: own!, to: step.to, cols };
  return { ...base, format: { job, rows, rowAlign: 1 } };
}

const WEIGHTS = "model.safetensors";
const INDEX = "model.safetensors.index.json";
const MODEL_CARD = "README.md";
const GENERATION = "generation_config.json";

const writtenBytes = (s: Step): number => s.written.reduce((b, p) => b + byteLengthOf(p.dtype, p.shape), 0);

/** The report of a --mlx run: each source tensor quantized (`mlx_<mode>`), kept (cast) or dropped, and why. */
function mlxRunReport(job: MlxJob, input: string, out: string, params: MlxLmRun, dtype: MlxFloat | null, steps: readonly Step[], dropped: SkippedEntry[]): MlxReport {
  const quantized: QuantizedEntry[] = [];
  const skipped: SkippedEntry[] = [];
  for (const s of steps) {
    const t = s.source;
    if (s.action === "keep") skipped.push({ name: t.name, reason: s.reason!, dtype: t.dtype, shape: t.shape, bytes: t.byteLength, bytes_after: writtenBytes(s) });
    else {
      const rule = `--mlx ${params.mode}`;
      quantized.push({ name: t.name, mode: `mlx_${params.mode}`, scheme: `${params.bits}-bit, groups of ${params.group_size}${s.to === null ? "" : `, ${s.to}`}`, rule, source_dtype: t.dtype, shape: t.shape, bytes_before: t.byteLength, bytes_after: writtenBytes(s) });
    }
  }
  const report = runReport({ input, output: out, manifest: manifestPathFor(join(out, INDEX)), dryRun: !!job.dryRun, quantized, skipped: [...skipped, ...dropped] });
  return {
    input,
    output: out,
    dry_run: !!job.dryRun,
    quantization: paramsOf(params),
    dtype,
    quantized: quantized.length,
    kept: skipped.length,
    dropped: dropped.length,
    bytes_before: report.bytes_before,
    bytes_after: report.bytes_after,
    report,
  };
}

/** What mlx_lm.convert writes besides the weights and config.json: the index (mlxLmIndexText) and README.md (its model card). */
async function writeMlxLmExtras(dir: string, steps: readonly Step[], job: MlxJob): Promise<void> {
  const weightMap = Object.fromEntries(steps.flatMap((s) => s.written.map((w) => [w.name, WEIGHTS])));
  const parameters = steps.reduce((n, s) => n + (elementCountOf(s.source.shape) ?? 0), 0);
  const size = steps.reduce((n, s) => n + writtenBytes(s), 0);
  await writeFileAtomic(join(dir, INDEX), mlxLmIndexText(size, parameters, weightMap), { fsync: !!job.fsync });
  await writeFileAtomic(join(dir, MODEL_CARD), MLX_LM_MODEL_CARD, { fsync: !!job.fsync });
}

/** generation_config.json's content (mlx_lm's load_config reads its eos_token_id), null when absent or not JSON. */
async function generationConfig(dir: string, others: readonly string[]): Promise<unknown> {
  if (!others.includes(GENERATION)) return null;
  const text = (await readRegularFile(join(dir, GENERATION), 1 << 24)).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null; // mlx_lm passes over a generation_config.json that is not JSON
  }
}

/** Runs `--mlx` on a model folder (see the module comment); input errors are one-line KquantErrors, exit 2. */
export async function runMlxQuantize(job: MlxJob): Promise<MlxReport> {
  const params = mlxLmParams(job.mode, job.bits, job.groupSize);
  const folder = await openModelFolder(job.input).catch((err: unknown) => {
    if (err instanceof KquantError) throw err;
    throw new KquantError({ file: job.input, what: "--mlx converts a model folder (config.json + weights)" });
  });
  const dtype = mlxLmDtype(folder.config, job.dtype);
  const tag = `mlx-${params.mode}-b${params.bits}-g${params.group_size}`;
  const out = job.output ?? defaultFolderOutput(folder.dir, tag);
  const reader = await openTensors(folder.weights);
  const pool = job.dryRun ? null : workerPoolFor(job, reader.tensors.reduce((n, t) => n + t.byteLength, 0));
  try {
    const planned = reader.tensors.map((t) => planStep(t, params, dtype, folder.config));
    const steps = planned.filter((s): s is Step => "source" in s);
    const dropped = planned.filter((s): s is SkippedEntry => !("source" in s));
    const report = mlxRunReport(job, folder.dir, out, params, dtype, steps, dropped);
    if (job.dryRun) return report;
    await inStaging(out, folder.dir, !!job.force, async (staging) => {
      const writer = await createSafetensorsWriter(join(staging, WEIGHTS), steps.flatMap((s) => s.written), { format: "mlx" }, { fsync: !!job.fsync });
      try {
        const tensors = steps.map((s) => streamTensorOf(s, params, writer));
        await streamTensors(reader, tensors, pool, ringBuffers(tensors, pool));
        await writer.finish();
      } catch (err) {
        await writer.abort();
        throw err;
      }
      await writeConfig(staging, mlxLmConfig(folder.config, params, await generationConfig(folder.dir, folder.others)), { fsync: !!job.fsync });
      await copyEntries(folder.dir, staging, folder.others.filter((n) => n !== WEIGHTS && n !== MODEL_CARD));
      await writeMlxLmExtras(staging, steps, job);
      await writeFolderManifest(staging, INDEX, { writer: "mlx_lm.convert", options: { mlx: params.mode, bits: params.bits, group_size: params.group_size, dtype: job.dtype ?? null }, source: basename(folder.dir) }, { fsync: !!job.fsync });
    });
    return report;
  } finally {
    await pool?.close();
    await reader.close();
  }
}
