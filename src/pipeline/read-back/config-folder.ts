/**
 * Reading back a folder whose quantization is described by its config.json, not by a kquant
 * manifest: MLX folders (mlx-folder.ts) and llm-compressor / `--scheme` folders
 * (scheme-folder.ts). Each says what its tensors are (`FolderTensor`); this module does the jobs
 * they share: `kquant dequantize` (the floats written to .safetensors or .npz, one tensor at a
 * time) and `kquant verify` (structure and contents, and against an original the error, the
 * gate and the histogram the HTML report draws).
 */
import { KquantError } from "../../errors.js";
import { writeNpz } from "../../formats/npz.js";
import { createSafetensorsWriter } from "../../formats/safetensors-writer.js";
import type { PlannedTensor, StDType, TensorInfo, TensorReader } from "../../formats/types.js";
import { compileGlob, matchesAny } from "../../plan/glob.js";
import { errorHistogram } from "../../quant/error-histogram.js";
import { errorMetrics } from "../../quant/error-metrics.js";
import { floatValues } from "../float-values.js";
import { folderManifestProblems } from "../folder-manifest.js";
import { checkOutputs } from "../quantize/outputs.js";
import type { DequantizeJob, DequantizeReport } from "./dequantize.js";
import { gateFailures, verifyReport, type TensorVerdict, type Thresholds, type VerifyOptions, type VerifyReport } from "./verify.js";

/** One tensor of such a folder as it reads back: a quantized weight (by its float name) or a tensor kept as it is. */
export interface FolderTensor {
  /** The float tensor's name (a quantized weight's `X.weight`). */
  name: string;
  /** Its float shape. */
  shape: number[];
  /** `mlx_<mode>`, `scheme_<PRESET>`; null for a tensor stored as it is. */
  mode: TensorVerdict["mode"] | null;
  /** The dtype `dequantize` writes it in (a kept tensor: its own). */
  dtype: StDType;
  /** What is wrong with its stored tensors (structure first; contents only when the structure is sound), one line each. */
  problems(): Promise<string[]>;
  /** Why `dequantize` refuses it (what would make its values wrong), or undefined. */
  refusal(): Promise<string | undefined>;
  /** Its bytes in `dtype` (a quantized one dequantized; call after `refusal` found none). */
  bytes(): Promise<Uint8Array>;
  /** A quantized tensor's values as float32, for the comparison with the original. */
  float32(): Promise<Float32Array>;
  /** With --against and no threshold flag: the least SQNR it must reach (none: not gated). */
  floor?: number;
  /**
   * `verify --against --exact`: where its stored tensors differ from what the reference's kernel
   * (the one `kquant quantize --scheme/--mlx` runs) makes of `bytes`, the original tensor's, one
   * line each ([]: the same). `original` is the whole original, for what a weight's bytes depend
   * on beyond its own (NVFP4's global scale over fused weights).
   */
  exact?(bytes: Uint8Array, info: TensorInfo, original: TensorReader): Promise<string[]>;
  /** The file its (first) stored tensor is in, for messages. */
  file: string;
}

/** A tensor stored as it is: copied by dequantize, nothing to measure; `problem`: why it cannot be (a stray beside a quantized weight). */
export function keptTensor(reader: TensorReader, t: TensorInfo, problem?: string): FolderTensor {
  return {
    name: t.name,
    shape: t.shape,
    mode: null,
    dtype: t.dtype,
    file: t.file,
    problems: async () => (problem === undefined ? [] : [problem]),
    refusal: async () => problem,
    bytes: () => reader.read(t.name),
    float32: async () => new Float32Array(),
  };
}

const numpyHasNo = (d: StDType) => d === "BF16" || d.startsWith("F8");

/** The tensors `filter` selects (all without one); none is refused in one line. */
function selected(file: string, tensors: readonly FolderTensor[], filter: readonly string[] | undefined): FolderTensor[] {
  const patterns = (filter ?? []).map(compileGlob);
  const out = tensors.filter((t) => patterns.length === 0 || matchesAny(t.name, patterns));
  if (out.length === 0) throw new KquantError({ file, what: `no tensor matches ${(filter ?? []).join(", ")}` });
  return out;
}

/**
 * `kquant dequantize` of such a folder: each quantized tensor checked (the first problem refuses
 * the run in one line, nothing written) and dequantized, the others copied, in order.
 */
export async function dequantizeFolderTensors(job: DequantizeJob, reader: TensorReader, all: readonly FolderTensor[], toNpz: boolean, metadata: Record<string, string>): Promise<DequantizeReport> {
  const tensors = selected(job.input, all, job.filter);
  const planned: PlannedTensor[] = tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
  if (toNpz) {
    const bad = planned.find((p) => numpyHasNo(p.dtype));
    if (bad) throw new KquantError({ file: job.output, tensor: bad.name, what: `numpy has no ${bad.dtype} dtype; write to .safetensors instead` });
  }
  await checkOutputs([job.output], [job.input, ...new Set(reader.tensors.map((t) => t.file))], !!job.force);
  const firstQuantized = tensors.find((t) => t.mode !== null);
  const report: DequantizeReport = { input: job.input, output: job.output, dtype: firstQuantized?.dtype ?? "F32", dequantized: [], passthrough: [], bytes_written: 0 };
  const bytesOf = async (t: FolderTensor): Promise<Uint8Array> => {
    const problem = await t.refusal();
    if (problem !== undefined) throw new KquantError({ file: t.file, tensor: t.name, what: problem });
    if (t.mode === null) {
      report.passthrough.push({ name: t.name, dtype: t.dtype, shape: t.shape });
      return t.bytes();
    }
    report.dequantized.push({ name: t.name, mode: t.mode as DequantizeReport["dequantized"][number]["mode"], shape: t.shape });
    return t.bytes();
  };
  if (toNpz) {
    const members = [];
    for (const [i, t] of tensors.entries()) {
      const bytes = await bytesOf(t);
      report.bytes_written += bytes.length;
      members.push({ ...planned[i]!, bytes });
    }
    await writeNpz(job.output, members, { fsync: job.fsync });
    return report;
  }
  const writer = await createSafetensorsWriter(job.output, planned, metadata, { fsync: job.fsync });
  try {
    for (const t of tensors) {
      const bytes = await bytesOf(t);
      report.bytes_written += bytes.length;
      await writer.write(t.name, bytes);
    }
    await writer.finish();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return report;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * `kquant verify` of such a folder (no manifest in `__metadata__`): each tensor's problems, and
 * the files the folder manifest beside its index vouches for re-hashed when kquant wrote one
 * (folder-manifest.ts: every file changed or missing is a file problem); with
 * `original`, each quantized tensor measured against the original tensor of the same name, gated
 * by the thresholds or (none given) its own floor.
 */
export async function verifyFolderTensors(
  path: string,
  all: readonly FolderTensor[],
  opts: VerifyOptions & { thresholds: Thresholds },
  original: TensorReader | undefined,
  onTensor?: (v: TensorVerdict) => void,
): Promise<VerifyReport> {
  const patterns = (opts.filter ?? []).map(compileGlob);
  const tensors = all.filter((t) => patterns.length === 0 || matchesAny(t.name, patterns));
  if (tensors.length === 0 && patterns.length > 0) throw new KquantError({ file: path, what: `no tensor matches ${opts.filter!.join(", ")}` });
  const originals = new Map((original?.tensors ?? []).map((t) => [t.name, t]));
  const verdicts: TensorVerdict[] = [];
  for (const t of tensors) {
    const v: TensorVerdict = { name: t.name, mode: t.mode ?? "passthrough", problems: [], gate_failures: [], ok: true };
    v.problems.push(...(await t.problems()));
    const orig = originals.get(t.name);
    if (original && orig === undefined) v.problems.push(`not in the original ${opts.against}`);
    else if (orig && !sameShape(orig.shape, t.shape)) v.problems.push(`the original is ${orig.dtype} [${orig.shape}], this holds [${t.shape}]`);
    else if (orig && t.mode !== null && v.problems.length === 0) {
      const bytes = await original!.read(orig.name);
      const ref = floatValues(orig.dtype, bytes);
      if (ref === null) v.problems.push(`the original is ${orig.dtype}, not a float tensor to measure against`);
      else {
        if (opts.exact && t.exact) v.problems.push(...(await t.exact(bytes, orig, original!)));
        const approx = await t.float32();
        v.metrics = errorMetrics(ref, approx);
        if (opts.histogramBins !== undefined && Number.isFinite(v.metrics.maxAbsError)) v.error_histogram = errorHistogram(ref, approx, v.metrics.maxAbsError, opts.histogramBins);
        v.gate_failures.push(...gateFailures(v.metrics, opts.thresholds, v.mode, opts.thresholds.minSqnrByMode ? t.floor : undefined));
      }
    }
    v.ok = v.problems.length === 0 && v.gate_failures.length === 0;
    verdicts.push(v);
    onTensor?.(v);
  }
  // kquant quantize --mlx's and --scheme's folders carry a manifest of their files' hashes beside the index.
  const files = await folderManifestProblems(path);
  return verifyReport(path, opts.against, opts.thresholds, files.problems, verdicts, 0, files.checked);
}
