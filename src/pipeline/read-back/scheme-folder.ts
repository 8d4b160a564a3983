/**
 * Reading back a folder llm-compressor's model_free_ptq (or `kquant quantize --scheme`) wrote:
 * config.json's `quantization_config` names the preset (layouts/llmc-config.ts), its descriptor
 * (modes/llmc-schemes.ts) the tensors of each quantized `M.weight` — `M.weight_packed` or an
 * `M.weight` of codes with an `M.weight_scale` beside it. `kquant inspect` summarises them (scheme,
 * format, grouping, bits per weight); `kquant dequantize` decompresses each as compressed-tensors
 * 0.19.0 does (src/quant/llmc/decompress.ts), in the dtype it computes in (the weight's for
 * int and FP8 channel / block formats, bfloat16 for NVFP4 and MX) unless --dtype says; `kquant
 * verify` checks structure and contents and measures against the original (config-folder.ts).
 */
import { dirname } from "node:path";
import { bitsOf } from "../../formats/dtypes.js";
import { isFolder, openModelFolder } from "../../formats/folder.js";
import type { TensorInfo, TensorReader } from "../../formats/types.js";
import { llmcSchemeOfConfig } from "../../layouts/llmc-config.js";
import { LLMC_DTYPE_OF, schemeNamed, ST_DTYPE_OF_LLMC, type SchemeDescriptor } from "../../modes/llmc-schemes.js";
import type { LlmcDType } from "../../quant/llmc/arith.js";
import { decompressLlmcLinear, llmcBytesOf, llmcDecompressedDtype } from "../../quant/llmc/decompress.js";
import { LLMC_PRESETS } from "../../quant/llmc/presets.js";
import { dequantizeFolderTensors, keptTensor, verifyFolderTensors, type FolderTensor } from "./config-folder.js";
import type { DequantizeJob, DequantizeReport } from "./dequantize.js";
import { naturalCompare } from "./inspect.js";
import { schemeExactProblems } from "./scheme-exact.js";
import type { TensorVerdict, Thresholds, VerifyOptions, VerifyReport } from "./verify.js";

/** A --scheme folder's quantization: the preset's descriptor, its config group's name and `ignore`. */
export interface SchemeFolder {
  descriptor: SchemeDescriptor;
  group: string;
  ignore: string[];
}

/** The --scheme quantization of the folder `input` is (or whose weights `input` is), or null. */
export async function schemeFolderOf(input: string): Promise<SchemeFolder | null> {
  const dir = (await isFolder(input)) ? input : dirname(input);
  const folder = await openModelFolder(dir).catch(() => null);
  const found = folder === null ? null : llmcSchemeOfConfig(folder.config, LLMC_PRESETS.filter((p) => p.refusal === null));
  return found === null ? null : { descriptor: schemeNamed(found.preset.name), group: found.group, ignore: found.ignore };
}

const OUT_OF: Record<NonNullable<DequantizeJob["dtype"]>, LlmcDType> = { f32: "float32", f16: "float16", bf16: "bfloat16" };

/** One quantized weight: its module, its stored tensors present (by suffix) and its codes tensor. */
interface SchemeWeight {
  module: string;
  parts: Map<string, TensorInfo>;
  codes: TensorInfo;
}

/** The quantized weights of a folder under `d`: an `M.weight_packed`, or an `M.weight` of codes with `M.weight_scale` beside it. */
function schemeWeights(reader: TensorReader, d: SchemeDescriptor): SchemeWeight[] {
  const byName = new Map(reader.tensors.map((t) => [t.name, t]));
  const codesSuffix = d.stored.find((s) => s.role === "codes" || s.role === "packed-codes")!.suffix;
  return reader.tensors.flatMap((t) => {
    if (!t.name.endsWith(`.${codesSuffix}`)) return [];
    const module = t.name.slice(0, -codesSuffix.length - 1);
    if (codesSuffix === "weight" && !byName.has(`${module}.weight_scale`)) return [];
    const parts = new Map(d.stored.flatMap((s) => (byName.has(`${module}.${s.suffix}`) ? [[s.suffix, byName.get(`${module}.${s.suffix}`)!] as const] : [])));
    return [{ module, parts, codes: t }];
  });
}

/**
 * A weight's float shape [rows, cols] from its stored tensors: the codes' own, FP4's packed
 * columns doubled, pack-quantized's groups (weight_shape is checked against it); or what is wrong.
 */
function floatShape(d: SchemeDescriptor, w: SchemeWeight): [number, number] | string {
  const c = w.codes;
  if (c.shape.length !== 2) return `codes tensor "${c.name}" is ${c.dtype} ${dims(c.shape)}, not 2-D`;
  const [rows, inner] = c.shape as [number, number];
  const role = d.stored.find((s) => s.suffix === c.name.slice(w.module.length + 1))!.role;
  if (role === "codes") return [rows, inner];
  if (d.preset.weights!.type === "float") return [rows, inner * 2];
  const scale = w.parts.get("weight_scale");
  if (scale === undefined || scale.shape.length !== 2) return `scale tensor "${w.module}.weight_scale" is ${scale ? `${scale.dtype} ${dims(scale.shape)}` : "missing"}, it gives the weight's columns`;
  return [rows, scale.shape[1]! * d.preset.weights!.groupSize!];
}

const dims = (shape: readonly number[]) => `[${shape.join(", ")}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The dtype T of the weight's float scales (null: none, or not one float dtype), and what is wrong with the stored tensors' dtypes and shapes. */
function structure(d: SchemeDescriptor, w: SchemeWeight, rows: number, cols: number): { t: LlmcDType | null; problems: string[] } {
  const shapes = d.storedShapes(rows, cols);
  const tRoles = d.stored.filter((s) => s.dtype === "T").map((s) => w.parts.get(s.suffix)?.dtype);
  const t = tRoles.length === 0 ? null : (LLMC_DTYPE_OF[tRoles[0]!] ?? null);
  const problems = d.stored.flatMap((s, i) => {
    const name = `${w.module}.${s.suffix}`;
    const info = w.parts.get(s.suffix);
    const wantDtype = s.dtype === "T" ? (t === null ? "a float dtype (F32, BF16, F16)" : ST_DTYPE_OF_LLMC[t]) : s.dtype;
    if (info === undefined) return [`${s.role} tensor "${name}" is missing (${d.name} stores ${wantDtype} ${dims(shapes[i]!)})`];
    if (info.dtype !== (s.dtype === "T" ? (t === null ? null : ST_DTYPE_OF_LLMC[t]) : s.dtype) || !sameShape(info.shape, shapes[i]!)) {
      return [`${s.role} tensor "${name}" is ${info.dtype} ${dims(info.shape)}, ${d.name} stores ${wantDtype} ${dims(shapes[i]!)} for a ${dims([rows, cols])} weight`];
    }
    return [];
  });
  return { t, problems };
}

/** A weight as config-folder.ts reads it back. */
function weightTensor(reader: TensorReader, run: SchemeFolder, w: SchemeWeight, out: LlmcDType | undefined): FolderTensor {
  const d = run.descriptor;
  const name = `${w.module}.weight`;
  const shape = floatShape(d, w);
  const [rows, cols] = typeof shape === "string" ? [0, 0] : shape;
  const s = typeof shape === "string" ? { t: null, problems: [shape] } : structure(d, w, rows, cols);
  // T for the kernel where the format has no float scale (its result is bfloat16 then).
  const t: LlmcDType = s.t ?? "bfloat16";
  const natural = llmcDecompressedDtype(d.preset, t);
  // Read for the checks and again for the values, never kept: one weight's bytes in memory at a time.
  const read = async () => new Map(await Promise.all([...w.parts].map(async ([suffix, info]) => [suffix, await reader.read(info.name)] as const)));
  let problems: string[] | undefined;
  const allProblems = async () => (problems ??= s.problems.length > 0 ? s.problems : d.problems(rows, cols, t, await read(), (suffix) => `${w.module}.${suffix}`));
  const values = async () => decompressLlmcLinear(d.preset, rows, cols, await read(), t);
  return {
    name,
    shape: typeof shape === "string" ? w.codes.shape : [rows, cols],
    mode: `scheme_${d.name}`,
    dtype: ST_DTYPE_OF_LLMC[out ?? natural],
    file: w.codes.file,
    floor: d.minSqnrDb,
    problems: allProblems,
    refusal: async () => (await allProblems())[0],
    async bytes() {
      const v = await values();
      return out === undefined || out === v.dtype ? v.bytes : llmcBytesOf(v.values, out);
    },
    float32: async () => (await values()).values,
    exact: async (bytes, info, original) => schemeExactProblems(d, run.ignore, w.module, await read(), bytes, info, original),
  };
}

/** A folder's tensors as they read back: each quantized weight under its float name, the others as they are. */
function folderTensors(reader: TensorReader, run: SchemeFolder, out: LlmcDType | undefined): FolderTensor[] {
  const d = run.descriptor;
  const weights = schemeWeights(reader, d);
  const byCodes = new Map(weights.map((w) => [w.codes.name, w]));
  const consumed = new Set(weights.flatMap((w) => [...w.parts.values()].filter((p) => p !== w.codes).map((p) => p.name)));
  // A tensor `M.weight_*` beside a quantized `M.weight` that the preset does not store (a zero point of a symmetric scheme, say).
  const modules = new Set(weights.map((w) => w.module));
  const stray = (name: string) => {
    const at = name.lastIndexOf(".weight_");
    return at > 0 && modules.has(name.slice(0, at)) ? `is stored beside the quantized weight "${name.slice(0, at)}.weight", but ${d.name} stores no ${name.slice(at + 1)}` : undefined;
  };
  // In name order (save_file orders a shard by dtype, then name).
  return reader.tensors
    .filter((t) => !consumed.has(t.name))
    .map((t) => (byCodes.has(t.name) ? weightTensor(reader, run, byCodes.get(t.name)!, out) : keptTensor(reader, t, stray(t.name))))
    .sort((a, b) => naturalCompare(a.name, b.name));
}

/** What `kquant inspect` says of a --scheme folder. */
export interface SchemeSummary {
  /** The preset, its config group's name, its compressed-tensors format and how its scales tile a weight. */
  scheme: string;
  group: string;
  format: string;
  grouping: string;
  /** The codes and scales in words (SchemeDescriptor.describe). */
  describe: string;
  /** Each quantized weight: its float name and shape, what it stores and the stored bits per weight (SchemeDescriptor.bitsPerWeight). */
  tensors: { name: string; shape: number[]; codes: string; stored: string[]; stored_bytes: number; bits_per_weight: number }[];
  /** Over the quantized weights: every stored byte of theirs (weight_shape and global scales too) per weight. */
  bits_per_weight: number;
  /** Modules config.json's `ignore` names (kept float). */
  ignore: string[];
}

/** The --scheme summary of `path`'s folder, or null when it is none. */
export async function schemeSummary(path: string, reader: TensorReader): Promise<SchemeSummary | null> {
  const run = await schemeFolderOf(path);
  if (run === null) return null;
  const d = run.descriptor;
  const tensors = schemeWeights(reader, d).flatMap((w) => {
    const shape = floatShape(d, w);
    if (typeof shape === "string") return [];
    const scale = d.stored.find((s) => s.dtype === "T");
    const scaleInfo = scale && w.parts.get(scale.suffix);
    const tBits = scaleInfo ? bitsOf(scaleInfo.dtype) : 0;
    const parts = [...w.parts.values()];
    return [{ name: `${w.module}.weight`, shape, codes: w.codes.name, stored: parts.map((p) => p.name), stored_bytes: parts.reduce((n, p) => n + p.byteLength, 0), bits_per_weight: d.bitsPerWeight(shape[0], shape[1], tBits) }];
  });
  const weights = tensors.reduce((n, t) => n + t.shape[0]! * t.shape[1]!, 0);
  const bytes = tensors.reduce((n, t) => n + t.stored_bytes, 0);
  return { scheme: d.name, group: run.group, format: d.format, grouping: d.grouping, describe: d.describe, tensors, bits_per_weight: weights > 0 ? (bytes * 8) / weights : 0, ignore: run.ignore };
}

/** `kquant dequantize` of a --scheme folder (see the module comment). */
export async function runSchemeDequantize(job: DequantizeJob, reader: TensorReader, run: SchemeFolder, toNpz: boolean): Promise<DequantizeReport> {
  const tensors = folderTensors(reader, run, job.dtype ? OUT_OF[job.dtype] : undefined);
  return dequantizeFolderTensors(job, reader, tensors, toNpz, {});
}

/** `kquant verify` of a --scheme folder (config-folder.ts: the files its folder manifest vouches for re-hashed, if it has one). */
export async function verifySchemeFolder(
  path: string,
  reader: TensorReader,
  run: SchemeFolder,
  opts: VerifyOptions & { thresholds: Thresholds },
  original: TensorReader | undefined,
  onTensor?: (v: TensorVerdict) => void,
): Promise<VerifyReport> {
  return verifyFolderTensors(path, folderTensors(reader, run, undefined), opts, original, onTensor);
}

/** The parameters each stored tensor of a --scheme folder holds: a weight's codes its float shape's, the rest none. */
export function schemeParameters(summary: SchemeSummary | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of summary?.tensors ?? []) for (const s of t.stored) out.set(s, s === t.codes ? t.shape[0]! * t.shape[1]! : 0);
  return out;
}
