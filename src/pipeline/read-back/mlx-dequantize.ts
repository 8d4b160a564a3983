/**
 * `kquant dequantize` of an MLX folder (config.json `quantization`, as mlx_lm.convert and
 * `kquant quantize --mlx` write it; no kquant manifest): every `X.weight` U32 with an `X.scales`
 * beside it back to floats exactly as mx.dequantize computes them (src/quant/mlx): affine in the
 * scales' dtype (then widened or rounded to the output dtype), mxfp4 / mxfp8 / nvfp4 in the output
 * dtype (mx.dequantize(…, dtype=D)). `X.biases` are consumed; every other tensor is copied as it is.
 */
import { dirname, join } from "node:path";
import { KquantError } from "../../errors.js";
import { isFolder, openModelFolder } from "../../formats/folder.js";
import { writeNpz } from "../../formats/npz.js";
import { createSafetensorsWriter } from "../../formats/safetensors-writer.js";
import type { PlannedTensor, StDType, TensorInfo, TensorReader } from "../../formats/types.js";
import { mlxFloatOf, mlxLmParamsOf, ST_OF_MLX, type MlxLmParams } from "../../layouts/mlx-lm.js";
import { globToRegExp, matchesAny } from "../../plan/glob.js";
import { mlxAffineDequantize } from "../../quant/mlx/affine.js";
import { storeAs, valuesOf, type MlxFloat } from "../../quant/mlx/floats.js";
import { mlxFpDequantize } from "../../quant/mlx/fp.js";
import { checkOutputs } from "../quantize/outputs.js";
import type { DequantizeJob, DequantizeReport } from "./dequantize.js";

/** The MLX quantization of the folder `input` is (or whose weights `input` is), or null. */
export async function mlxFolderParams(input: string): Promise<MlxLmParams | null> {
  const dir = (await isFolder(input)) ? input : dirname(input);
  const folder = await openModelFolder(dir).catch(() => null);
  return folder === null ? null : mlxLmParamsOf(folder.config, join(dir, "config.json"));
}

const MLX_OF_OUT: Readonly<Record<DequantizeJob["dtype"], MlxFloat>> = { f32: "float32", f16: "float16", bf16: "bfloat16" };

const words = (b: Uint8Array): Uint32Array => {
  const own = b.byteOffset % 4 === 0 ? b : b.slice();
  return new Uint32Array(own.buffer, own.byteOffset, own.byteLength / 4);
};
const floats = (b: Uint8Array, dtype: MlxFloat): Float32Array | Uint16Array => {
  const own = b.byteOffset % 4 === 0 ? b : b.slice();
  return dtype === "float32" ? new Float32Array(own.buffer, own.byteOffset, own.byteLength / 4) : new Uint16Array(own.buffer, own.byteOffset, own.byteLength / 2);
};
const view = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** One quantized weight's values as `out` (mx.dequantize; see the module comment). */
async function dequantizeWeight(reader: TensorReader, params: MlxLmParams, w: TensorInfo, scales: TensorInfo, out: MlxFloat): Promise<Uint8Array> {
  const at = { file: w.file, tensor: w.name };
  const base = w.name.slice(0, -".weight".length);
  const wq = words(await reader.read(w.name));
  if (params.mode !== "affine") {
    if (scales.dtype !== "U8") throw new KquantError({ ...at, what: `${params.mode} scales are U8, "${scales.name}" is ${scales.dtype}` });
    return view(mlxFpDequantize(wq, w.shape, await reader.read(scales.name), params.mode, out).data);
  }
  const biases = reader.tensors.find((t) => t.name === `${base}.biases`);
  const dtype = mlxFloatOf(scales.dtype);
  if (biases === undefined || dtype === null || biases.dtype !== scales.dtype) {
    throw new KquantError({ ...at, what: `affine needs float "${base}.scales" and "${base}.biases" of one dtype` });
  }
  const s = { dtype, shape: scales.shape, data: floats(await reader.read(scales.name), dtype) };
  const b = { dtype, shape: biases.shape, data: floats(await reader.read(biases.name), dtype) };
  const v = mlxAffineDequantize(wq, w.shape, s, b, params.bits, params.group_size);
  return view(dtype === out ? v.data : storeAs(valuesOf(v.data, dtype), out));
}

/** `kquant dequantize` of an MLX folder (see the module comment). */
export async function runMlxDequantize(job: DequantizeJob, reader: TensorReader, params: MlxLmParams, toNpz: boolean): Promise<DequantizeReport> {
  const out = MLX_OF_OUT[job.dtype];
  const byName = new Map(reader.tensors.map((t) => [t.name, t]));
  const quantized = (t: TensorInfo) => t.name.endsWith(".weight") && t.dtype === "U32" && byName.has(`${t.name.slice(0, -".weight".length)}.scales`);
  const consumed = new Set(reader.tensors.filter(quantized).flatMap((t) => ["scales", "biases"].map((r) => `${t.name.slice(0, -".weight".length)}.${r}`)));
  const patterns = (job.filter ?? []).map(globToRegExp);
  const tensors = reader.tensors.filter((t) => !consumed.has(t.name) && (patterns.length === 0 || matchesAny(t.name, patterns)));
  if (tensors.length === 0) throw new KquantError({ file: job.input, what: `no tensor matches ${(job.filter ?? []).join(", ")}` });
  const shapeOf = (t: TensorInfo) => (quantized(t) ? [...t.shape.slice(0, -1), (t.shape[t.shape.length - 1]! * 32) / params.bits] : t.shape);
  const planned: PlannedTensor[] = tensors.map((t) => ({ name: t.name, dtype: quantized(t) ? ST_OF_MLX[out] : t.dtype, shape: shapeOf(t) }));
  if (toNpz) {
    const bad = planned.find((p) => p.dtype === "BF16" || p.dtype.startsWith("F8"));
    if (bad) throw new KquantError({ file: job.output, tensor: bad.name, what: `numpy has no ${bad.dtype} dtype; write to .safetensors instead` });
  }
  await checkOutputs([job.output], [job.input, ...new Set(reader.tensors.map((t) => t.file))], !!job.force);
  const report: DequantizeReport = { input: job.input, output: job.output, dtype: ST_OF_MLX[out] as StDType, dequantized: [], passthrough: [], bytes_written: 0 };
  const bytesOf = async (t: TensorInfo, i: number): Promise<Uint8Array> => {
    if (!quantized(t)) {
      report.passthrough.push({ name: t.name, dtype: t.dtype, shape: t.shape });
      return reader.read(t.name);
    }
    report.dequantized.push({ name: t.name, mode: `mlx_${params.mode}`, shape: planned[i]!.shape });
    return dequantizeWeight(reader, params, t, byName.get(`${t.name.slice(0, -".weight".length)}.scales`)!, out);
  };
  if (toNpz) {
    const members = [];
    for (const [i, t] of tensors.entries()) {
      const bytes = await bytesOf(t, i);
      report.bytes_written += bytes.length;
      members.push({ ...planned[i]!, bytes });
    }
    await writeNpz(job.output, members, { fsync: job.fsync });
    return report;
  }
  const writer = await createSafetensorsWriter(job.output, planned, { format: "mlx" }, { fsync: job.fsync });
  try {
    for (const [i, t] of tensors.entries()) {
      const bytes = await bytesOf(t, i);
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
