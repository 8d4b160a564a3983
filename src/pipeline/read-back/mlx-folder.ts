/**
 * Reading an MLX folder back; `kquant inspect` summarises it (mode, group, bits, bits per weight)
 * and `kquant dequantize` of it (config.json `quantization`, as mlx_lm.convert and
 * `kquant quantize --mlx` write it; no kquant manifest): every `X.weight` U32 with an `X.scales`
 * beside it back to floats exactly as mx.dequantize computes them (src/quant/mlx): affine in the
 * scales' dtype (then widened or rounded to the output dtype), mxfp4 / mxfp8 / nvfp4 in the output
 * dtype (mx.dequantize(…, dtype=D)). `X.biases` are consumed; every other tensor is copied as it is.
 */
import { dirname, join } from "node:path";
import { KquantError } from "../../errors.js";
import { isFolder, openModelFolder } from "../../formats/folder.js";
import type { TensorInfo, TensorReader } from "../../formats/types.js";
import { mlxFloatOf, mlxLmDtype, mlxLmParamsOf, paramsOf, ST_OF_MLX, type MlxLmParams, type MlxLmRun } from "../../layouts/mlx-lm.js";
import type { MlxStored } from "../../modes/mlx.js";
import type { MlxFloat } from "../../quant/mlx/floats.js";
import type { DequantizeJob, DequantizeReport } from "./dequantize.js";
import type { TensorVerdict, Thresholds, VerifyOptions, VerifyReport } from "./verify.js";
import { readFolderManifest } from "../folder-manifest.js";
import { formatSlice } from "../quantize/format-slice.js";
import { dequantizeFolderTensors, keptTensor, verifyFolderTensors, type FolderTensor } from "./config-folder.js";
import { storedDifference } from "./exact.js";

/** The MLX quantization of the folder `input` is (or whose weights `input` is), or null. */
export async function mlxFolderParams(input: string): Promise<MlxLmRun | null> {
  const dir = (await isFolder(input)) ? input : dirname(input);
  const folder = await openModelFolder(dir).catch(() => null);
  return folder === null ? null : mlxLmParamsOf(folder.config, join(dir, "config.json"));
}

const MLX_OF_OUT: Readonly<Record<NonNullable<DequantizeJob["dtype"]>, MlxFloat>> = { f32: "float32", f16: "float16", bf16: "bfloat16" };

const words = (b: Uint8Array): Uint32Array => {
  const own = b.byteOffset % 4 === 0 ? b : b.slice();
  return new Uint32Array(own.buffer, own.byteOffset, own.byteLength / 4);
};
const view = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A folder's quantized weights: each `X.weight` U32 with an `X.scales` beside it, and its companions' names. */
function quantizedWeights(reader: TensorReader): { weight: TensorInfo; scales: TensorInfo; biases?: TensorInfo }[] {
  const byName = new Map(reader.tensors.map((t) => [t.name, t]));
  return reader.tensors.flatMap((weight) => {
    const base = weight.name.slice(0, -".weight".length);
    const scales = byName.get(`${base}.scales`);
    if (!weight.name.endsWith(".weight") || weight.dtype !== "U32" || scales === undefined) return [];
    const biases = byName.get(`${base}.biases`);
    return [{ weight, scales, ...(biases ? { biases } : {}) }];
  });
}

type Quantized = ReturnType<typeof quantizedWeights>[number];

/** What `kquant inspect` says of an MLX folder's quantization. */
export interface MlxSummary {
  quantization: MlxLmParams;
  /** Each quantized weight: its float shape, what it stores (codes, scales, biases) and the stored bits per weight. */
  tensors: { name: string; shape: number[]; stored_bytes: number; bits_per_weight: number }[];
  /** Over the quantized weights. */
  bits_per_weight: number;
}

/** The MLX summary of `path`'s folder, or null when it is no MLX folder. */
export async function mlxSummary(path: string, reader: TensorReader): Promise<MlxSummary | null> {
  const params = await mlxFolderParams(path);
  if (params === null) return null;
  const tensors = quantizedWeights(reader).map(({ weight, scales, biases }) => {
    const shape = [...weight.shape.slice(0, -1), (weight.shape[weight.shape.length - 1]! * 32) / params.bits];
    const stored = weight.byteLength + scales.byteLength + (biases?.byteLength ?? 0);
    return { name: weight.name, shape, stored_bytes: stored, bits_per_weight: (stored * 8) / shape.reduce((a, b) => a * b, 1) };
  });
  const weightCount = tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const bytes = tensors.reduce((n, t) => n + t.stored_bytes, 0);
  return { quantization: paramsOf(params), tensors, bits_per_weight: weightCount > 0 ? (bytes * 8) / weightCount : 0 };
}

/** A quantized weight's stored tensors' bytes. */
async function readStored(reader: TensorReader, q: Quantized): Promise<MlxStored> {
  return {
    codes: words(await reader.read(q.weight.name)),
    scales: await reader.read(q.scales.name),
    ...(q.biases ? { biases: await reader.read(q.biases.name) } : {}),
  };
}

/** One quantized weight's values as `out` (mx.dequantize; see the module comment); a malformed one is refused in one line. */
async function dequantizeWeight(reader: TensorReader, params: MlxLmRun, q: Quantized, out: MlxFloat): Promise<Uint8Array> {
  const problem = shapeProblems(q, params)[0];
  if (problem !== undefined) throw new KquantError({ file: q.weight.file, tensor: q.weight.name, what: problem });
  const values = params.descriptor.dequantize(await readStored(reader, q), q.weight.shape, mlxFloatOf(q.scales.dtype), params.bits, params.group_size, out);
  return view(values);
}

/** An MLX folder's tensors as they read back (config-folder.ts): each quantized weight, and the others as they are (scales and biases consumed). */
function folderTensors(reader: TensorReader, params: MlxLmRun, out: MlxFloat | undefined, runDtype: MlxFloat | null = null): FolderTensor[] {
  // Without --dtype: affine in its scales' dtype, the fp modes in mx.dequantize's default, bfloat16.
  const outOf = (q: Quantized): MlxFloat => out ?? mlxFloatOf(q.scales.dtype) ?? "bfloat16";
  const weights = new Map(quantizedWeights(reader).map((q) => [q.weight.name, q]));
  const consumed = new Set([...weights.values()].flatMap((q) => [q.scales.name, ...(q.biases ? [q.biases.name] : [])]));
  return reader.tensors
    .filter((t) => !consumed.has(t.name))
    .map((t): FolderTensor => {
      const q = weights.get(t.name);
      if (q === undefined) {
        return keptTensor(reader, t);
      }
      return {
        name: t.name,
        shape: [...t.shape.slice(0, -1), (t.shape[t.shape.length - 1]! * 32) / params.bits],
        mode: `mlx_${params.mode}`,
        dtype: ST_OF_MLX[outOf(q)],
        file: t.file,
        async problems() {
          const shapes = shapeProblems(q, params);
          if (shapes.length > 0) return shapes;
          const names = { codes: q.weight.name, scales: q.scales.name, ...(q.biases ? { biases: q.biases.name } : {}) };
          return params.descriptor.problems(await readStored(reader, q), mlxFloatOf(q.scales.dtype), names);
        },
        floor: params.descriptor.minSqnrDb(params.bits),
        refusal: async () => shapeProblems(q, params)[0],
        bytes: () => dequantizeWeight(reader, params, q, outOf(q)),
        async float32() {
          const back = await dequantizeWeight(reader, params, q, "float32");
          return new Float32Array(back.buffer, back.byteOffset, back.byteLength / 4);
        },
        exact: (bytes, info) => exactProblems(reader, params, q, runDtype, bytes, info),
      };
    });
}

/** `kquant dequantize` of an MLX folder (see the module comment). */
export async function runMlxDequantize(job: DequantizeJob, reader: TensorReader, params: MlxLmRun, toNpz: boolean): Promise<DequantizeReport> {
  const report = await dequantizeFolderTensors(job, reader, folderTensors(reader, params, job.dtype ? MLX_OF_OUT[job.dtype] : undefined), toNpz, { format: "mlx" });
  return job.dtype ? { ...report, dtype: ST_OF_MLX[MLX_OF_OUT[job.dtype]] } : report;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** What is wrong with a quantized weight's tensors' dtypes and shapes, one line each (none: it can be read). */
function shapeProblems(q: Quantized, params: MlxLmRun): string[] {
  const { weight: w, scales, biases } = q;
  const cols = (w.shape[w.shape.length - 1]! * 32) / params.bits;
  if (w.shape.length < 2 || !Number.isInteger(cols) || cols % params.group_size !== 0) {
    return [`weight "${w.name}" U32 [${w.shape}] does not hold whole groups of ${params.group_size} ${params.bits}-bit codes per row`];
  }
  const groups = [...w.shape.slice(0, -1), cols / params.group_size];
  const out: string[] = [];
  const { scalesInDtype, biases: withBiases } = params.descriptor;
  if (!sameShape(scales.shape, groups) || (scalesInDtype ? mlxFloatOf(scales.dtype) === null : scales.dtype !== "U8")) {
    out.push(`scales "${scales.name}" is ${scales.dtype} [${scales.shape}], ${params.mode} needs ${scalesInDtype ? "a float" : "U8"} [${groups}]`);
  }
  if (withBiases && (biases === undefined || biases.dtype !== scales.dtype || !sameShape(biases.shape, groups))) {
    out.push(`biases "${w.name.slice(0, -".weight".length)}.biases" must be ${scales.dtype} [${groups}] like the scales${biases ? `, it is ${biases.dtype} [${biases.shape}]` : ", it is missing"}`);
  }
  if (!withBiases && biases !== undefined) out.push(`biases "${biases.name}": ${params.mode} stores none`);
  return out;
}

/**
 * `kquant verify` of an MLX folder (no manifest in `__metadata__`; the hashes of the files
 * `kquant quantize --mlx` wrote, when its folder manifest is there): each quantized weight's tensors
 * have the shapes and dtypes its config's quantization needs and hold values MLX writes; with
 * `original`, each is dequantized as mx.dequantize does (float32 for the fp modes) and measured
 * against the original tensor of the same name.
 */
export async function verifyMlxFolder(
  path: string,
  reader: TensorReader,
  params: MlxLmRun,
  opts: VerifyOptions & { thresholds: Thresholds },
  original: TensorReader | undefined,
  onTensor?: (v: TensorVerdict) => void,
): Promise<VerifyReport> {
  const runDtype = opts.exact ? await runDtypeOf(path) : null;
  return verifyFolderTensors(path, folderTensors(reader, params, undefined, runDtype), opts, original, onTensor);
}

/**
 * The dtype the folder's weights were cast to before they were quantized (mlx_lm's --dtype): the
 * one kquant's folder manifest records, else config.json's, as mlx_lm.convert defaults to (a
 * folder mlx_lm.convert wrote with --dtype does not record it); null: each weight its own.
 */
async function runDtypeOf(path: string): Promise<MlxFloat | null> {
  const dir = (await isFolder(path)) ? path : dirname(path);
  const read = await readFolderManifest(dir);
  const flag = read === null || typeof read.manifest === "string" ? undefined : read.manifest.options?.dtype;
  return mlxLmDtype((await openModelFolder(dir)).config, typeof flag === "string" ? flag : undefined);
}

/**
 * `verify --exact`: where weight `q`'s stored tensors differ from what MLX's kernel (the one
 * `quantize --mlx` runs, format-slice.ts) makes of the original `bytes` cast to the run's dtype
 * (affine: its scales' dtype), one line per tensor.
 */
async function exactProblems(reader: TensorReader, params: MlxLmRun, q: Quantized, runDtype: MlxFloat | null, bytes: Uint8Array, info: TensorInfo): Promise<string[]> {
  const own = mlxFloatOf(info.dtype);
  if (own === null) return [`the original is ${info.dtype}, not a float weight MLX quantizes`];
  const to = (params.descriptor.scalesInDtype ? mlxFloatOf(q.scales.dtype) : runDtype) ?? own;
  const cols = info.shape[info.shape.length - 1]!;
  const rows = cols === 0 ? 0 : info.shape.reduce((a, b) => a * b, 1) / cols;
  const parts = formatSlice({ kind: "mlx", mode: params.mode, bits: params.bits, groupSize: params.group_size, own, to, cols }, rows, bytes)!; // no checkValues: never null
  const stored = [q.weight, q.scales, ...(q.biases ? [q.biases] : [])];
  const have = await Promise.all(stored.map((t) => reader.read(t.name)));
  const by = `mx.quantize (${params.mode}, ${params.bits}-bit, groups of ${params.group_size}, ${to}) makes from the original`;
  return parts.flatMap((p, i) => storedDifference(`tensor "${stored[i]?.name ?? `#${i}`}"`, p.bytes, have[i], by) ?? []);
}
