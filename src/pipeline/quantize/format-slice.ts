/**
 * The --scheme and --mlx kernels (and --mlx's casts, --scheme's absmax and non-finite checks) on a
 * block of whole rows of one weight, as a worker thread (worker-entry.ts) or the main thread runs
 * it (weight-stream.ts cuts a weight into such blocks and writes each one's outputs where they
 * lie in the whole weight's planned tensors: formatBlock says where). Every format here quantizes
 * rows independently (groups and channels lie along a row; FP8_BLOCK's blocks span 128 rows, so
 * its slices are multiples of 128 rows; NVFP4's global scale comes in with the job), so the joined
 * bytes are those of the whole weight at once, and a block's intermediates and outputs stay one
 * block's worth. Workers read the source where it lies (a ring slot, shared) and pack their
 * outputs back into that slot (packParts; a fresh buffer only where they do not fit).
 */
import type { StDType } from "../../formats/types.js";
import { LLMC_DTYPE_OF } from "../../modes/llmc-schemes.js";
import { stDTypeOfKeras } from "../../formats/dtypes.js";
import { mlxLmParams } from "../../layouts/mlx-lm.js";
import { floatData } from "../../modes/mlx.js";
import { llmcPreset } from "../../quant/llmc/presets.js";
import { llmcAbsMax, llmcLinearUnlessNonFinite, quantizeLlmcLinear, type LlmcWeight } from "../../quant/llmc/linear.js";
import { freshArrays, type Arrays } from "../../quant/arrays.js";
import { storeAs, valuesOf, type MlxFloat } from "../../quant/mlx/floats.js";

/** What to do with a block of rows: a --scheme preset's Linear weight, an --mlx quantization, or --mlx's cast of a kept tensor. */
export type FormatJob =
  /** `checkValues`: a block holding a non-finite value is refused (streamTensors throws RefusedValues) instead of quantized. */
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
 * null: a `checkValues` job's rows hold a non-finite value. The kernels make their outputs and
 * intermediates by `arrays` (quant/arrays.ts; reused ones make the outputs good until the next call).
 */
export function formatSlice(job: FormatJob, rows: number, bytes: Uint8Array, arrays: Arrays = freshArrays): FormatPart[] | null {
  if (job.kind === "absmax") {
    // llmcAbsMax is NaN or ±Inf exactly when a value is: one scan gives the absmax and the refusal.
    const m = llmcAbsMax(llmcWeightOf(job.dtype, rows, job.cols, bytes).values);
    return [{ suffix: "absmax", dtype: "F64", shape: [], bytes: view(Float64Array.of(Number.isFinite(m) ? m : NaN)) }];
  }
  if (job.kind === "llmc") {
    const w = llmcWeightOf(job.dtype, rows, job.cols, bytes);
    const preset = llmcPreset(job.preset);
    const out = job.checkValues ? llmcLinearUnlessNonFinite(w, preset, job.globalScale, arrays) : quantizeLlmcLinear(w, preset, job.globalScale, arrays);
    if (out === null) return null;
    return [...out].map(([suffix, t]) => ({ suffix, dtype: stDTypeOfKeras(t.dtype), shape: [...t.shape], bytes: view(t.data) }));
  }
  const own = floatData(bytes, job.own);
  const cast = () => storeAs(valuesOf(own, job.own, arrays), job.to, arrays);
  if (job.kind === "cast") return [{ suffix: "0", dtype: "U8", shape: [], bytes: view(cast()) }];
  const params = mlxLmParams(job.mode, job.bits, job.groupSize);
  const data = job.own === job.to ? own : cast();
  const q = params.descriptor.quantize({ dtype: job.to, shape: [rows, job.cols], data }, job.bits, job.groupSize, arrays);
  return [view(q.codes), q.scales, ...(q.biases ? [q.biases] : [])].map((b, i) => ({ suffix: String(i), dtype: "U8", shape: [], bytes: b }));
}

/** llm-compressor outputs that are the same for every block (not stacked by rows). */
const WHOLE = new Set(["weight_shape", "weight_global_scale"]);

/** Source bytes per block (one ring slot): two cores stay busy, and a block's intermediates and outputs stay small. */
export const SLICE_BYTES = 2 * 1024 * 1024;

/** One output tensor's part of a block: `bytes` at byte `at` of output `out` (formatSlice's order). */
export interface BlockPart {
  out: number;
  at: number;
  bytes: Uint8Array;
}

/**
 * Block `idx` of `n` (`blockRows` whole rows held in `bytes`) of a [rows, job.cols] weight through
 * formatSlice, each output's part with where it lies in the whole weight's output tensor (`lengths`:
 * their planned byte lengths, in formatSlice's order): all blocks but the last are alike, so block
 * i's part lies at i × its length, the last one's at the end; weight_shape (the whole weight's)
 * and the global scale, the same for every block, come with block 0 only. A worker runs it (the
 * "format-slice" task) or the main thread. Null: the block's values are refused (formatSlice's null).
 * `arrays`: as formatSlice's.
 */
export function formatBlock(job: FormatJob, rows: number, idx: number, n: number, blockRows: number, bytes: Uint8Array, lengths: readonly number[], arrays: Arrays = freshArrays): BlockPart[] | null {
  const parts = formatSlice(job, blockRows, bytes, arrays);
  if (parts === null) return null;
  if (parts.length !== lengths.length) throw new Error(`a block gave ${parts.length} tensors, ${lengths.length} planned`);
  return parts.flatMap((p, i) => {
    const whole = lengths[i]!;
    const same = WHOLE.has(p.suffix);
    if (same && idx > 0) return [];
    const b = p.suffix === "weight_shape" ? view(BigInt64Array.of(BigInt(rows), BigInt(job.cols))) : p.bytes;
    const at = same ? 0 : idx < n - 1 ? idx * b.length : whole - b.length;
    if (at < 0 || at + b.length > whole || ((n === 1 || same) && b.length !== whole)) {
      throw new Error(`block ${idx + 1} of ${n}: tensor ${i} of ${b.length} bytes does not fit its planned ${whole}`);
    }
    return [{ out: i, at, bytes: b }];
  });
}

/**
 * `parts` packed one after another into `bytes` (the block's source, which the kernels are done
 * with) where they fit and none of them lies in it, else into one fresh buffer: the parts as views
 * of where they now lie. The kernels' arrays (reused from block to block, which may be longer than
 * the part) are then free for the next block, and a worker's outputs reach the main thread in
 * shared memory (or the fresh buffer, handed over: worker-entry.ts).
 */
export function packParts(parts: readonly BlockPart[], bytes: Uint8Array): BlockPart[] {
  const total = parts.reduce((n, p) => n + p.bytes.length, 0);
  const packed = total <= bytes.length && parts.every((p) => p.bytes.buffer !== bytes.buffer) ? bytes : new Uint8Array(total);
  let at = 0;
  return parts.map((p) => {
    packed.set(p.bytes, at);
    at += p.bytes.length;
    return { ...p, bytes: packed.subarray(at - p.bytes.length, at) };
  });
}

/** weight-stream.ts's refusal of a weight whose rows hold a non-finite value (a `checkValues` job): the caller checks its weights' values and starts again. */
export class RefusedValues extends Error {
  constructor() {
    super("a weight holds a non-finite value");
  }
}

/**
 * The blocks weight-stream.ts cuts a weight of `rows` rows, `byteLength` bytes into: [from, to) row
 * ranges, multiples of `rowAlign` rows (so packed fields and FP8_BLOCK's blocks never straddle
 * two blocks) of about `sliceBytes` each (the last one shorter); one empty block for no rows.
 */
export function rowBlocks(rows: number, rowAlign: number, byteLength: number, sliceBytes = SLICE_BYTES): [number, number][] {
  const rowBytes = rows === 0 ? 0 : byteLength / rows;
  const per = Math.max(rowAlign, Math.floor(sliceBytes / Math.max(1, rowBytes) / rowAlign) * rowAlign);
  const ranges: [number, number][] = [];
  for (let r = 0; r < rows; r += per) ranges.push([r, Math.min(rows, r + per)]);
  if (ranges.length === 0) ranges.push([0, 0]);
  return ranges;
}
