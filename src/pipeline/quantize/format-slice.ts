/**
 * The --scheme and --mlx kernels (and --mlx's casts, --scheme's absmax and non-finite checks) on a
 * block of whole rows of one weight, as a worker thread (worker-entry.ts) or the main thread runs
 * it, and the driver that cuts a weight into such blocks, runs them on the worker pool (or in turn
 * in-process) as their rows are read and places their outputs into the whole weight's planned
 * output buffers. Every format here quantizes rows independently (groups and channels lie along a
 * row; FP8_BLOCK's blocks span 128 rows, so its slices are multiples of 128 rows; NVFP4's global
 * scale comes in with the job), so the joined bytes are those of the whole weight at once — which
 * also keeps the widened float32 copy and the codes to one slice's worth. Workers read the source
 * and write the outputs where they lie (SharedArrayBuffers): nothing is copied between threads.
 */
import type { StDType } from "../../formats/types.js";
import { LLMC_DTYPE_OF, schemeNamed } from "../../modes/llmc-schemes.js";
import { stDTypeOfKeras } from "../../formats/dtypes.js";
import { mlxLmParams } from "../../layouts/mlx-lm.js";
import { floatData } from "../../modes/mlx.js";
import { llmcPreset } from "../../quant/llmc/presets.js";
import { llmcAbsMax, llmcLinearUnlessNonFinite, quantizeLlmcLinear, type LlmcWeight } from "../../quant/llmc/linear.js";
import { storeAs, valuesOf, type MlxFloat } from "../../quant/mlx/floats.js";
import type { TaskResult, WorkerPool } from "../workers.js";

/** What to do with a block of rows: a --scheme preset's Linear weight, an --mlx quantization, or --mlx's cast of a kept tensor. */
export type FormatJob =
  /** `checkValues`: a block holding a non-finite value is refused (formatRows throws RefusedValues) instead of quantized. */
  | { kind: "llmc"; preset: string; dtype: StDType; cols: number; globalScale?: number; checkValues?: boolean }
  | { kind: "mlx"; mode: string; bits: number; groupSize: number; own: MlxFloat; to: MlxFloat; cols: number }
  | { kind: "cast"; own: MlxFloat; to: MlxFloat; cols: number }
  /** --scheme's values pass: a block's absmax as one float64 (NaN: it holds a non-finite value, llmcValueRefusal). */
  | { kind: "absmax"; dtype: StDType; cols: number };

/** One output tensor of a block: its name's suffix (llmc) or index (mlx), dtype, shape and bytes. */
export interface FormatPart {
  suffix: string;
  dtype: StDType;
  shape: number[];
  bytes: Uint8Array;
}

/**
 * A weight's values as model_free_ptq reads them (float32 widened from T), [rows, cols]: a view of
 * `bytes` (copied only where misaligned), float32 or the 16-bit patterns the kernels widen themselves.
 */
export function llmcWeightOf(dtype: StDType, rows: number, cols: number, bytes: Uint8Array): LlmcWeight {
  const d = LLMC_DTYPE_OF[dtype]!;
  const width = d === "float32" ? 4 : 2;
  const a = bytes.byteOffset % width === 0 ? bytes : bytes.slice();
  const values = d === "float32" ? new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4) : { bits: new Uint16Array(a.buffer, a.byteOffset, a.byteLength / 2), kind: d };
  return { dtype: d, rows, cols, values };
}

const view = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * The outputs of `job` on `rows` whole rows held in `bytes`, in the order the kernels give them;
 * null: a `checkValues` job's rows hold a non-finite value. `codesInto` (llmc): where the codes
 * tensor's bytes will be placed, which the SIMD kernels then write directly (quantizeLlmcLinear).
 */
export function formatSlice(job: FormatJob, rows: number, bytes: Uint8Array, codesInto?: Uint8Array): FormatPart[] | null {
  if (job.kind === "absmax") {
    // llmcAbsMax is NaN or ±Inf exactly when a value is: one scan gives the absmax and the refusal.
    const m = llmcAbsMax(llmcWeightOf(job.dtype, rows, job.cols, bytes).values);
    return [{ suffix: "absmax", dtype: "F64", shape: [], bytes: view(Float64Array.of(Number.isFinite(m) ? m : NaN)) }];
  }
  if (job.kind === "llmc") {
    const w = llmcWeightOf(job.dtype, rows, job.cols, bytes);
    const preset = llmcPreset(job.preset);
    const out = job.checkValues ? llmcLinearUnlessNonFinite(w, preset, job.globalScale, codesInto) : quantizeLlmcLinear(w, preset, job.globalScale, codesInto);
    if (out === null) return null;
    return [...out].map(([suffix, t]) => ({ suffix, dtype: stDTypeOfKeras(t.dtype), shape: [...t.shape], bytes: view(t.data) }));
  }
  const own = floatData(bytes, job.own);
  if (job.kind === "cast") return [{ suffix: "0", dtype: "U8", shape: [], bytes: view(storeAs(valuesOf(own, job.own), job.to)) }];
  const params = mlxLmParams(job.mode, job.bits, job.groupSize);
  const data = job.own === job.to ? own : storeAs(valuesOf(own, job.own), job.to);
  const q = params.descriptor.quantize({ dtype: job.to, shape: [rows, job.cols], data }, job.bits, job.groupSize);
  return [view(q.codes), q.scales, ...(q.biases ? [q.biases] : [])].map((b, i) => ({ suffix: String(i), dtype: "U8", shape: [], bytes: b }));
}

/** llm-compressor outputs that are the same for every block (not stacked by rows). */
const WHOLE = new Set(["weight_shape", "weight_global_scale"]);

/** Source bytes per block: two cores stay busy, and a block's float32 copy and codes stay small. */
const SLICE_BYTES = 2 * 1024 * 1024;

/**
 * Block `idx` of `n` (`blockRows` whole rows held in `bytes`) of a [rows, job.cols] weight through
 * formatSlice, its outputs placed into the whole weight's (`into`, one per output tensor in
 * formatSlice's order, their planned lengths): all blocks but the last are alike, so block i's part
 * lies at i × its length, the last one's at the end; weight_shape is the whole weight's, the global
 * scale any block's. A worker runs it on shared memory (the "format-slice" task), or the main thread.
 * False: the block's values are refused (formatSlice's null), nothing placed.
 */
export function formatBlock(job: FormatJob, rows: number, idx: number, n: number, blockRows: number, bytes: Uint8Array, into: readonly Uint8Array[]): boolean {
  const parts = formatSlice(job, blockRows, bytes, codesTarget(job, rows, idx, n, blockRows, into));
  if (parts !== null) placeBlock(job, rows, idx, n, parts, into);
  return parts !== null;
}

/** formatRows' refusal of a weight whose rows hold a non-finite value (a `checkValues` job): the caller checks its weights' values and starts again. */
export class RefusedValues extends Error {
  constructor() {
    super("a weight holds a non-finite value");
  }
}

/** Where block `idx` of `n` (`blockRows` of the weight's `rows`) is placed in the codes tensor's buffer (an llmc job's weight or weight_packed), or undefined. */
function codesTarget(job: FormatJob, rows: number, idx: number, n: number, blockRows: number, into: readonly Uint8Array[]): Uint8Array | undefined {
  if (job.kind !== "llmc" || rows === 0) return undefined;
  const whole = into[schemeNamed(job.preset).stored.findIndex((s) => s.role === "codes" || s.role === "packed-codes")];
  if (whole === undefined) return undefined;
  const length = (whole.length / rows) * blockRows;
  const at = idx < n - 1 ? idx * length : whole.length - length;
  return whole.subarray(at, at + length);
}

function placeBlock(job: FormatJob, rows: number, idx: number, n: number, parts: readonly FormatPart[], into: readonly Uint8Array[]): void {
  if (parts.length !== into.length) throw new Error(`a block gave ${parts.length} tensors, ${into.length} planned`);
  parts.forEach((p, i) => {
    const whole = into[i]!;
    const bytes = p.suffix === "weight_shape" ? view(BigInt64Array.of(BigInt(rows), BigInt(job.cols))) : p.bytes;
    const at = WHOLE.has(p.suffix) ? 0 : idx < n - 1 ? idx * bytes.length : whole.length - bytes.length;
    if (at < 0 || at + bytes.length > whole.length || (n === 1 && bytes.length !== whole.length)) {
      throw new Error(`block ${idx + 1} of ${n}: tensor ${i} of ${bytes.length} bytes does not fit its planned ${whole.length}`);
    }
    // the codes the kernels wrote in place (codesTarget) are there already
    if (bytes.buffer !== whole.buffer || bytes.byteOffset !== whole.byteOffset + at) whole.set(bytes, at);
  });
}

/**
 * The blocks formatRows cuts a weight of `rows` rows, `byteLength` bytes into: [from, to) row
 * ranges, multiples of `rowAlign` rows of about `sliceBytes` each (the last one shorter); one empty
 * block for no rows.
 */
export function rowBlocks(rows: number, rowAlign: number, byteLength: number, sliceBytes = SLICE_BYTES): [number, number][] {
  const rowBytes = rows === 0 ? 0 : byteLength / rows;
  const per = Math.max(rowAlign, Math.floor(sliceBytes / Math.max(1, rowBytes) / rowAlign) * rowAlign);
  const ranges: [number, number][] = [];
  for (let r = 0; r < rows; r += per) ranges.push([r, Math.min(rows, r + per)]);
  if (ranges.length === 0) ranges.push([0, 0]);
  return ranges;
}

/**
 * `job` on a whole [rows, job.cols] weight held in `bytes`, in blocks of whole rows (multiples of
 * `rowAlign`, so packed fields and FP8_BLOCK's blocks never straddle two blocks, about
 * `sliceBytes` of source each), into `into`: one buffer per output tensor in formatSlice's order,
 * each its planned length (the blocks' outputs stacked along their first dimension, weight_shape
 * and the global scale taken whole). With `pool`, blocks run on its workers as soon as `landed`
 * (the filled byte counts of a progressive read; absent: all there) says their rows are in,
 * reading `bytes` and writing `into` in place (both must lie on SharedArrayBuffers); without, one
 * after another here. Resolves when every block is placed; nothing touches `bytes` or `into` after
 * that, or after a rejection.
 */
export async function formatRows(
  pool: WorkerPool | null,
  job: FormatJob,
  rows: number,
  rowAlign: number,
  bytes: Uint8Array,
  into: readonly Uint8Array[],
  landed?: AsyncIterable<number>,
  sliceBytes = SLICE_BYTES,
): Promise<void> {
  const rowBytes = rows === 0 ? 0 : bytes.length / rows;
  const ranges = rowBlocks(rows, rowAlign, bytes.length, sliceBytes);
  const n = ranges.length;
  if (pool !== null && rows > 0 && ![bytes, ...into].every((b) => b.buffer instanceof SharedArrayBuffer)) {
    throw new Error("formatRows on workers reads and writes in place: the source and outputs must lie on SharedArrayBuffers");
  }
  const block = (idx: number) => bytes.subarray(ranges[idx]![0] * rowBytes, ranges[idx]![1] * rowBytes);
  const pending: Promise<boolean>[] = [];
  let next = 0;
  const start = (filled: number) => {
    for (; next < n && ranges[next]![1] * rowBytes <= filled; next++) {
      const blockRows = ranges[next]![1] - ranges[next]![0];
      if (pool === null || rows === 0) pending.push(Promise.resolve(formatBlock(job, rows, next, n, blockRows, block(next), into)));
      else {
        const task = pool.run({ kind: "format-slice", job, rows, idx: next, n, blockRows, bytes: block(next), into }).then((r) => (r as Extract<TaskResult, { kind: "format-slice" }>).placed);
        task.catch(() => undefined); // awaited below, once the read is done; not an unhandled rejection meanwhile
        pending.push(task);
      }
    }
  };
  try {
    if (landed !== undefined) for await (const filled of landed) start(filled);
    start(bytes.length);
    if (!(await Promise.all(pending)).every(Boolean)) throw new RefusedValues();
  } finally {
    // A failure leaves no block still running on the caller's buffers.
    await Promise.allSettled(pending);
  }
}
