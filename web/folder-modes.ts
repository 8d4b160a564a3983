/**
 * The folder modes in the page's worker: `kquant quantize MODEL_DIR --scheme NAME [--ignore E]`
 * (llm-compressor's model_free_ptq, src/pipeline/quantize/scheme-run.ts) and `--mlx MODE [--bits N]
 * [--block-size N] [--dtype D]` (mlx_lm.convert, src/pipeline/quantize/mlx-run.ts). They run as the
 * CLI runs them (src/cli/quantize.ts's schemeAction and mlxAction build the same jobs), on the
 * page's file system (vfs.ts), so the folder written is the CLI's, file for file.
 */
import { KquantError } from "../src/errors.js";
import { isFolder, openModelFolder } from "../src/formats/folder.js";
import { openTensors } from "../src/formats/open.js";
import type { StDType } from "../src/formats/types.js";
import { schemeNamed } from "../src/modes/llmc-schemes.js";
import { runMlxQuantize, type MlxJob } from "../src/pipeline/quantize/mlx-run.js";
import { defaultFolderOutput } from "../src/pipeline/quantize/outputs.js";
import { runScheme, type SchemeJob } from "../src/pipeline/quantize/scheme-run.js";
import { llmcActions } from "../src/plan/llmc-targets.js";
import { llmcRefusal } from "../src/quant/llmc/linear.js";
import type { Choice, FolderModeChoice, FolderModeDone, FolderModePlan } from "./protocol.js";

/**
 * What a --scheme run will do, told before it reads any weight: the preset's descriptor (format,
 * the tensors stored per weight) and the tensor names and shapes (which weights model_free_ptq
 * targets, and which the format cannot hold by shape). Values (NaN, infinities) and the input's
 * own quantization_config are checked when it runs.
 */
export interface SchemePreview {
  input: string;
  output: string;
  /** The preset's name, upper case. */
  scheme: string;
  /** compressed-tensors format, e.g. pack-quantized. */
  format: string;
  /** The tensors each quantized `M.weight` becomes: `M.<suffix>` of dtype ("T": the weight's own). */
  stored: { suffix: string; dtype: StDType | "T" }[];
  /** Weights the preset quantizes. */
  quantized: string[];
  /** Weights it targets that stay float by their shape, and why. */
  kept: { name: string; reason: string }[];
  tensors: number;
  bytes_before: number;
  /** The bytes of the weights it quantizes. */
  quantizedBytes: number;
}

function options(choice: Choice): FolderModeChoice {
  if (choice.folder === undefined) throw new KquantError({ file: `--${choice.mode}`, what: "the page sent no options for this mode" });
  return choice.folder;
}

/** The --scheme job `kquant quantize INPUT --scheme NAME --ignore E...` runs. */
function schemeJob(input: string, choice: Choice): SchemeJob {
  const o = options(choice);
  return { input, scheme: o.scheme, ...(o.ignore.length > 0 ? { ignore: o.ignore } : {}) };
}

/** The --mlx job `kquant quantize INPUT --mlx MODE [--bits N] [--block-size N] [--dtype D]` runs. */
function mlxJob(input: string, choice: Choice, dryRun: boolean): MlxJob {
  const o = options(choice);
  return {
    input,
    mode: o.mlxMode,
    ...(o.bits !== null ? { bits: o.bits } : {}),
    ...(choice.blockSize !== null ? { groupSize: choice.blockSize } : {}),
    ...(o.dtype !== "" ? { dtype: o.dtype } : {}),
    dryRun,
  };
}

/** The dry run of a folder mode on `input` (the page's summary). */
export async function planFolderMode(input: string, choice: Choice): Promise<FolderModePlan> {
  if (choice.mode === "mlx") return { kind: "mlx", report: await runMlxQuantize(mlxJob(input, choice, true)) };
  return { kind: "scheme", preview: await previewScheme(input, choice) };
}

/**
 * Runs a folder mode on `input` into the page's file system; the written files are vfs.ts's.
 * `threads`: the run's worker pool, as `--threads` (undefined: the CLI's default); the bytes are the same.
 */
export async function runFolderMode(input: string, choice: Choice, threads?: number): Promise<FolderModeDone> {
  const pool = threads === undefined ? {} : { threads };
  if (choice.mode === "mlx") {
    const r = await runMlxQuantize({ ...mlxJob(input, choice, false), ...pool });
    return { kind: "mlx", output: r.output, bytes_before: r.bytes_before, kept: [] };
  }
  const r = await runScheme({ ...schemeJob(input, choice), ...pool });
  return { kind: "scheme", output: r.output, bytes_before: r.bytes_before, kept: r.kept };
}

/**
 * The bytes a folder-mode run reads from its input (the progress bar's whole): --scheme reads each
 * weight it quantizes twice (its first pass checks values and finds NVFP4's global scales), --mlx
 * every tensor once (`inputBytes`).
 */
export async function folderModeBytesToRead(input: string, choice: Choice, inputBytes: number): Promise<number> {
  if (choice.mode !== "scheme") return inputBytes;
  const p = await previewScheme(input, choice);
  return p.bytes_before + p.quantizedBytes;
}

async function previewScheme(input: string, choice: Choice): Promise<SchemePreview> {
  const job = schemeJob(input, choice);
  const scheme = schemeNamed(job.scheme);
  // Not a folder: the run's own refusal, before it reads anything (scheme-run.ts checks this first).
  if (!(await isFolder(input))) await runScheme(job);
  const folder = await openModelFolder(input);
  const reader = await openTensors(folder.weights);
  try {
    const names = reader.tensors.map((t) => t.name);
    const infos = new Map(reader.tensors.map((t) => [t.name, t]));
    const quantized: string[] = [];
    let quantizedBytes = 0;
    const kept: SchemePreview["kept"] = [];
    // NVFP4's fused sets (tensor_group) are checked here as the run checks them: a missing partner is refused.
    for (const [name, action] of llmcActions(names, job.ignore ?? [], scheme.preset.weights!.strategy === "tensor_group")) {
      if (action.kind !== "quantize") continue;
      const why = llmcRefusal(scheme.preset, infos.get(name)!.shape);
      if (why === null) {
        quantized.push(name);
        quantizedBytes += infos.get(name)!.byteLength;
      }
      else kept.push({ name, reason: why });
    }
    return {
      input,
      output: defaultFolderOutput(folder.dir, scheme.name.toLowerCase()),
      scheme: scheme.name,
      format: scheme.format,
      stored: scheme.stored.map(({ suffix, dtype }) => ({ suffix, dtype })),
      quantized,
      kept,
      tensors: reader.tensors.length,
      bytes_before: reader.tensors.reduce((n, t) => n + t.byteLength, 0),
      quantizedBytes,
    };
  } finally {
    await reader.close();
  }
}
