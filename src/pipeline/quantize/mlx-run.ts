/**
 * `kquant quantize MODEL_DIR --mlx MODE`: the folder mlx_lm.convert writes (layouts/mlx-lm.ts holds
 * its decisions, quant/mlx the arithmetic). Each floating tensor is cast to the run's dtype (MLX's
 * astype: round to nearest even), then a weight mlx_lm quantizes goes through MLX's kernel, the
 * rest is written cast; everything lands in one `model.safetensors` in a staging folder beside the
 * output with config.json and the folder's other files, renamed into place when whole.
 */
import { join } from "node:path";
import { copyEntries, openModelFolder, writeConfig } from "../../formats/folder.js";
import { byteLengthOf, elementCountOf } from "../../formats/dtypes.js";
import { openTensors } from "../../formats/open.js";
import { createSafetensorsWriter } from "../../formats/safetensors-writer.js";
import type { PlannedTensor, TensorInfo } from "../../formats/types.js";
import { KquantError } from "../../errors.js";
import { mlxFloatOf, mlxLmAction, mlxLmConfig, mlxLmDtype, mlxLmParams, paramsOf, ST_OF_MLX, type MlxLmParams, type MlxLmRun } from "../../layouts/mlx-lm.js";
import { floatData, mlxScalesDtype } from "../../modes/mlx.js";
import { storeAs, valuesOf, type MlxFloat } from "../../quant/mlx/floats.js";
import type { WorkerPool } from "../workers.js";
import { maxOf } from "../../units.js";
import { inStaging } from "./folder-run.js";
import { formatRows, type FormatJob } from "./format-slice.js";
import { workerPoolFor } from "./run-quantize.js";
import { defaultFolderOutput } from "./outputs.js";

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
}

interface Step {
  source: TensorInfo;
  action: "quantize" | "keep";
  /** The dtype the source is cast to (null: its bytes as they are). */
  to: MlxFloat | null;
  written: PlannedTensor[];
}

const mlxOf = (t: TensorInfo): MlxFloat | null => mlxFloatOf(t.dtype);

function planStep(t: TensorInfo, params: MlxLmRun, dtype: MlxFloat | null, config: Readonly<Record<string, unknown>>): Step | null {
  const action = mlxLmAction(t.name, t.shape, params.group_size, config);
  if (action === "drop") return null;
  const own = mlxOf(t);
  const to = own === null ? null : (dtype ?? own);
  if (action === "keep" || to === null) return { source: t, action: "keep", to, written: [{ name: t.name, dtype: to === null ? t.dtype : ST_OF_MLX[to], shape: t.shape }] };
  const base = t.name.slice(0, -".weight".length);
  const [rows, cols] = t.shape as [number, number];
  const groups = [rows, cols / params.group_size];
  const written: PlannedTensor[] = [
    { name: `${base}.weight`, dtype: "U32", shape: [rows, (cols * params.bits) / 32] },
    { name: `${base}.scales`, dtype: mlxScalesDtype(params.descriptor, ST_OF_MLX[to]), shape: groups },
  ];
  if (params.descriptor.biases) written.push({ name: `${base}.biases`, dtype: ST_OF_MLX[to], shape: groups });
  return { source: t, action: "quantize", to, written };
}

const view = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The written tensors' bytes of one step, in `written` order (a quantized weight in blocks of rows on the pool, format-slice.ts). */
async function stepBytes(step: Step, bytes: Uint8Array, params: MlxLmRun, pool: WorkerPool | null): Promise<Uint8Array[]> {
  if (step.to === null) return [bytes];
  const own = mlxOf(step.source)!;
  if (step.action === "keep") return [view(own === step.to ? floatData(bytes, own) : storeAs(valuesOf(floatData(bytes, own), own), step.to))];
  const shape = step.source.shape;
  const cols = shape[shape.length - 1]!;
  const job: FormatJob = { kind: "mlx", mode: params.mode, bits: params.bits, groupSize: params.group_size, own, to: step.to, cols };
  return (await formatRows(pool, job, cols === 0 ? 0 : elementCountOf(shape)! / cols, 1, bytes)).map((p) => p.bytes);
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
    const steps = reader.tensors.map((t) => planStep(t, params, dtype, folder.config)).filter((s): s is Step => s !== null);
    const planned = steps.flatMap((s) => s.written);
    const report: MlxReport = {
      input: folder.dir,
      output: out,
      dry_run: !!job.dryRun,
      quantization: paramsOf(params),
      dtype,
      quantized: steps.filter((s) => s.action === "quantize").length,
      kept: steps.filter((s) => s.action === "keep").length,
      dropped: reader.tensors.length - steps.length,
      bytes_before: reader.tensors.reduce((a, t) => a + t.byteLength, 0),
      bytes_after: steps.reduce((a, s) => a + (s.action === "keep" && s.to === null ? s.source.byteLength : s.written.reduce((b, p) => b + byteLengthOf(p.dtype, p.shape), 0)), 0),
    };
    if (job.dryRun) return report;
    await inStaging(out, folder.dir, !!job.force, async (staging) => {
      const writer = await createSafetensorsWriter(join(staging, "model.safetensors"), planned, { format: "mlx" }, { fsync: !!job.fsync });
      try {
        // Weights to quantize are read into one buffer, reused: their outputs never point into it.
        const quantized = new Set(steps.filter((s) => s.action === "quantize" && s.to !== null));
        const weightBuffer = new Uint8Array(maxOf([...quantized].map((s) => s.source.byteLength), 0));
        for (const step of steps) {
          const into = quantized.has(step) ? weightBuffer.subarray(0, step.source.byteLength) : undefined;
          const parts = await stepBytes(step, await reader.read(step.source.name, into), params, pool);
          for (let i = 0; i < parts.length; i++) await writer.write(step.written[i]!.name, parts[i]!);
        }
        await writer.finish();
      } catch (err) {
        await writer.abort();
        throw err;
      }
      await writeConfig(staging, mlxLmConfig(folder.config, params), { fsync: !!job.fsync });
      await copyEntries(folder.dir, staging, folder.others.filter((n) => n !== "model.safetensors"));
    });
    return report;
  } finally {
    await pool?.close();
    await reader.close();
  }
}
