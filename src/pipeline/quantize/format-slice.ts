/**
 * The --scheme and --mlx kernels on a block of whole rows of one weight, as a worker thread
 * (worker-entry.ts) or the main thread runs it, and the driver that cuts a weight into such
 * blocks, runs them on the worker pool (or in turn in-process) and joins their outputs. Every
 * format here quantizes rows independently (groups and channels lie along a row; FP8_BLOCK's
 * blocks span 128 rows, so its slices are multiples of 128 rows; NVFP4's global scale comes in
 * with the job), so the joined bytes are those of the whole weight at once — which also keeps
 * the widened float32 copy and the codes to one slice's worth.
 */
import type { StDType } from "../../formats/types.js";
import { stDTypeOfKeras } from "../../formats/dtypes.js";
import { mlxLmParams } from "../../layouts/mlx-lm.js";
import { floatData } from "../../modes/mlx.js";
import { llmcPreset } from "../../quant/llmc/presets.js";
import { quantizeLlmcLinear, type LlmcWeight } from "../../quant/llmc/linear.js";
import type { LlmcDType } from "../../quant/llmc/arith.js";
import { bf16BitsToF32, f16BitsToF32 } from "../../quant/convert.js";
import { storeAs, valuesOf, type MlxFloat } from "../../quant/mlx/floats.js";
import type { TaskResult, WorkerPool } from "../workers.js";

/** What to do with a block of rows: a --scheme preset's Linear weight, or an --mlx quantization. */
export type FormatJob =
  | { kind: "llmc"; preset: string; dtype: StDType; cols: number; globalScale?: number }
  | { kind: "mlx"; mode: string; bits: number; groupSize: number; own: MlxFloat; to: MlxFloat; cols: number };

/** One output tensor of a block: its name's suffix (llmc) or index (mlx), dtype, shape and bytes. */
export interface FormatPart {
  suffix: string;
  dtype: StDType;
  shape: number[];
  bytes: Uint8Array;
}

const LLMC_DTYPES: Partial<Record<StDType, LlmcDType>> = { F32: "float32", BF16: "bfloat16", F16: "float16" };

/** A weight's values as model_free_ptq reads them (float32 widened from T), [rows, cols]. */
export function llmcWeightOf(dtype: StDType, rows: number, cols: number, bytes: Uint8Array): LlmcWeight {
  const d = LLMC_DTYPES[dtype]!;
  const a = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  let values: Float32Array;
  if (d === "float32") values = new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
  else {
    values = new Float32Array(a.byteLength / 2);
    (d === "bfloat16" ? bf16BitsToF32 : f16BitsToF32)(new Uint16Array(a.buffer, a.byteOffset, a.byteLength / 2), values);
  }
  return { dtype: d, rows, cols, values };
}

const view = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The outputs of `job` on `rows` whole rows held in `bytes`, in the order the kernels give them. */
export function formatSlice(job: FormatJob, rows: number, bytes: Uint8Array): FormatPart[] {
  if (job.kind === "llmc") {
    const w = llmcWeightOf(job.dtype, rows, job.cols, bytes);
    return [...quantizeLlmcLinear(w, llmcPreset(job.preset), job.globalScale)].map(([suffix, t]) => ({ suffix, dtype: stDTypeOfKeras(t.dtype), shape: [...t.shape], bytes: view(t.data) }));
  }
  const params = mlxLmParams(job.mode, job.bits, job.groupSize);
  const own = floatData(bytes, job.own);
  const data = job.own === job.to ? own : storeAs(valuesOf(own, job.own), job.to);
  const q = params.descriptor.quantize({ dtype: job.to, shape: [rows, job.cols], data }, job.bits, job.groupSize);
  return [view(q.codes), q.scales, ...(q.biases ? [q.biases] : [])].map((b, i) => ({ suffix: String(i), dtype: "U8", shape: [], bytes: b }));
}

/** llm-compressor outputs that are the same for every block (not stacked by rows). */
const WHOLE = new Set(["weight_shape", "weight_global_scale"]);

/** Source bytes per block: two cores stay busy, and a block's float32 copy and codes stay small. */
const SLICE_BYTES = 2 * 1024 * 1024;

/**
 * `job` on a whole [rows, job.cols] weight, in blocks of whole rows (multiples of `rowAlign`, so
 * packed fields and FP8_BLOCK's blocks never straddle two blocks) on `pool`'s workers, or one
 * after another here without a pool; the blocks' outputs stacked along their first dimension
 * (the rows, or packed rows), weight_shape and the global scale taken whole. `sliceBytes`: source
 * bytes per block (tests make it small).
 */
export async function formatRows(pool: WorkerPool | null, job: FormatJob, rows: number, rowAlign: number, bytes: Uint8Array, sliceBytes = SLICE_BYTES): Promise<FormatPart[]> {
  const rowBytes = rows === 0 ? 0 : bytes.length / rows;
  const per = Math.max(rowAlign, Math.floor(sliceBytes / Math.max(1, rowBytes) / rowAlign) * rowAlign);
  if (rows <= per) return formatSlice(job, rows, bytes);
  const ranges: [number, number][] = [];
  for (let r = 0; r < rows; r += per) ranges.push([r, Math.min(rows, r + per)]);
  const n = ranges.length;
  const block = ([from, to]: [number, number]) => bytes.subarray(from * rowBytes, to * rowBytes);
  // Each block's outputs are copied into the whole weight's as they come, so only a window of them
  // is held. All blocks but the last are alike: the last one runs first, and once it and block 0
  // are in, every block's place is known.
  let full: FormatPart[] | undefined;
  let last: FormatPart[] | undefined;
  let out: FormatPart[] | undefined;
  const held = new Map<number, FormatPart[]>();
  const place = (idx: number, parts: FormatPart[]) => {
    parts.forEach((p, i) => {
      if (!WHOLE.has(p.suffix)) out![i]!.bytes.set(p.bytes, idx * full![i]!.bytes.length);
    });
  };
  const arrive = (idx: number, parts: FormatPart[]) => {
    if (idx === 0) full = parts;
    if (idx === n - 1) last = parts;
    if (out !== undefined) return place(idx, parts);
    held.set(idx, parts);
    if (full === undefined || last === undefined) return;
    out = full.map((f, i) => {
      if (WHOLE.has(f.suffix)) return f.suffix === "weight_shape" ? { ...f, bytes: view(BigInt64Array.of(BigInt(rows), BigInt(job.cols))) } : f;
      const l = last![i]!;
      const shape = f.shape.length === 0 ? [] : [f.shape[0]! * (n - 1) + l.shape[0]!, ...f.shape.slice(1)];
      return { ...f, shape, bytes: new Uint8Array(f.bytes.length * (n - 1) + l.bytes.length) };
    });
    for (const [j, p] of held) place(j, p);
    held.clear();
  };
  const order = [n - 1, ...ranges.keys()].slice(0, n);
  if (pool === null) {
    for (const idx of order) arrive(idx, formatSlice(job, ranges[idx]![1] - ranges[idx]![0], block(ranges[idx]!)));
    return out!;
  }
  // A window of blocks in flight: each task carries a copy of its rows (posting a view would clone the whole buffer).
  const window = pool.size + 1;
  const pending: [number, Promise<TaskResult>][] = [];
  const settle = async () => {
    const [idx, result] = pending.shift()!;
    arrive(idx, ((await result) as Extract<TaskResult, { kind: "format-slice" }>).parts);
  };
  try {
    for (const idx of order) {
      if (pending.length >= window) await settle();
      const r = ranges[idx]!;
      pending.push([idx, pool.run({ kind: "format-slice", job, rows: r[1] - r[0], bytes: block(r).slice() })]);
    }
    while (pending.length > 0) await settle();
  } finally {
    // A failed block leaves none of the others running on the caller's buffer.
    await Promise.allSettled(pending.map(([, p]) => p));
  }
  return out!;
}
