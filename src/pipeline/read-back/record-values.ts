/**
 * A quantized record's stored bytes back to values: the whole tensor as float32
 * (dequantizeRecord), block of rows by block (dequantizedBlocks), or as an output dtype's bytes
 * (dequantizeBytes). Pure: no files; shared by dequantize, verify and their worker threads.
 *
 * Blocks: a record dequantized block of rows by block, so that comparing it with its original
 * needs one block's float32, not a copy of the whole tensor. The blocks are row slices as
 * quantize cuts them (quantize/row-split.ts: whole packed int4 row pairs, whole groups of rows, a
 * scale that covers every row left whole), so each block's values are the whole tensor's values
 * at those indices.
 */
import type { QuantizeStep } from "../../plan/plan.js";
import { byteLengthOf } from "../../formats/dtypes.js";
import { modeNamed } from "../../modes/registry.js";
import { scaleShapeOf, storedNamesOf, storedTensors, type StoredBytes, type StoredGeometry } from "../../plan/stored.js";
import { f32ToBf16Bits, f32ToF16Bits } from "../../quant/convert.js";
import { ERROR_BLOCK } from "../../quant/error-metrics.js";
import { layoutNamed } from "../../layouts/index.js";
import type { LayoutName } from "../../layouts/layout.js";
import { geometryOf, type TensorRecord } from "../manifest.js";
import { rowSplitOf, slicedRange } from "../quantize/row-split.js";

/** The stored bytes of one record, by role. */
export type StoredParts = StoredBytes;

/** The floating dtype dequantize writes (float32, float16 or bfloat16). */
export type FloatOut = "f32" | "f16" | "bf16";

/**
 * One quantized record back to float32, in the source tensor's shape (the stored shapes must
 * already be checked), into `into` if given (exactly that many elements): its mode's read-back.
 */
export function dequantizeRecord(rec: TensorRecord, parts: StoredParts, into?: Float32Array): Float32Array {
  const g = geometryOf(rec) as StoredGeometry;
  const out = into ?? new Float32Array(byteLengthOf("F32", rec.shape) / 4);
  return modeNamed(g.mode).dequantize(rec.shape, g, parts, out);
}

/** The blocks' float32 array, kept for the next record on this thread. */
let spareBlock = new Float32Array(0);

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number): number => (a / gcd(a, b)) * b;

/** Whether the kernels see a broadcast scale (dequantize.ts: it changes how int8 divides). */
const broadcast = (shape: readonly number[], scaleShape: readonly number[]) =>
  scaleShape.length !== shape.length || scaleShape.some((d, i) => d !== shape[i]);

/**
 * The record's float32 values as [start, end, values] element ranges in order, about
 * `targetElements` each; every block but the last starts and ends on a multiple of `align`
 * elements (ErrorAccumulator's block, so its sums come out as for the whole tensor). A tensor
 * that cannot be cut so comes as one block. The `values` array is reused from block to block and
 * by the next call on this thread (a fresh one per tensor left the garbage collector megabytes
 * each time): use each block before taking the next, and finish one walk before starting another.
 * With `into` (the whole tensor's n floats) the blocks are dequantized in place there instead;
 * with `range`, only blocks [from, to) of the walk are made (a share of it for one thread).
 */
export function* dequantizedBlocks(
  rec: TensorRecord,
  parts: StoredParts,
  targetElements = 1 << 20,
  align = ERROR_BLOCK,
  into?: Float32Array,
  range?: [number, number],
): Generator<[number, number, Float32Array]> {
  const plan = blockPlan(rec, targetElements, align);
  const [first, end] = range ?? [0, plan.count];
  if (plan.per === 0) {
    if (first <= 0 && end > 0) yield [0, plan.n, dequantizeRecord(rec, parts, into)];
    return;
  }
  const { per, cols, rows, split, stored } = plan;
  const shape = rec.shape;
  if (!into && spareBlock.length < per * cols) spareBlock = new Float32Array(per * cols);
  for (let b = Math.max(0, first); b < Math.min(end, plan.count); b++) {
    const from = b * per;
    const to = Math.min(rows, from + per);
    const k = to - from;
    const slice = (role: "values" | "scale" | "zero", bytes: Uint8Array): Uint8Array => {
      const s = split!.stored[stored.findIndex((t) => t.role === role)]!;
      if (s === null) return bytes;
      const r = slicedRange(s, from, to);
      return bytes.subarray(r.offset, r.offset + r.length);
    };
    const sub: StoredParts = { values: slice("values", parts.values), scale: slice("scale", parts.scale), ...(parts.zero ? { zero: slice("zero", parts.zero) } : {}) };
    const subRec: TensorRecord = { ...rec, shape: [k, ...shape.slice(1)], ...(rec.pack_axis === 0 ? { orig_len: k } : {}) };
    const target = into ? into.subarray(from * cols, to * cols) : spareBlock.subarray(0, k * cols);
    yield [from * cols, to * cols, dequantizeRecord(subRec, sub, target)];
  }
}

/** How many blocks dequantizedBlocks yields for `rec` (with its default sizes). */
export function dequantizedBlockCount(rec: TensorRecord): number {
  return blockPlan(rec, 1 << 20, ERROR_BLOCK).count;
}

/** Where dequantizedBlocks cuts: `per` rows a block (0: one block, the whole tensor). */
function blockPlan(rec: TensorRecord, targetElements: number, align: number) {
  const shape = rec.shape;
  const n = shape.reduce((a, b) => a * b, 1);
  const g = geometryOf(rec) as StoredGeometry;
  const stored = storedTensors(storedNamesOf("x"), shape, g);
  const whole = { per: 0, count: 1, n, rows: 0, cols: 0, split: null, stored };
  const step = { spec: { mode: g.mode, axis: g.axis, packAxis: g.packAxis, blockSize: g.blockSize }, source: { shape, byteLength: n * 4 }, stored };
  const split = n > targetElements ? rowSplitOf(step as unknown as QuantizeStep) : null;
  const rows = shape[0]!;
  const cols = n / rows;
  if (split === null || cols === 0) return whole;
  const multiple = lcm(split.rowMultiple, align / gcd(align, cols));
  const per = Math.max(multiple, Math.floor(targetElements / cols / multiple) * multiple);
  const last = rows % per;
  const sliceShape = (k: number) => [k, ...shape.slice(1)];
  const sameBroadcast = (k: number) => broadcast(sliceShape(k), scaleShapeOf(sliceShape(k), g)) === broadcast(shape, scaleShapeOf(shape, g));
  if (per >= rows || (last !== 0 && (last < split.minLastRows || !sameBroadcast(last))) || !sameBroadcast(per)) return whole;
  return { per, count: Math.ceil(rows / per), n, rows, cols, split, stored };
}

/**
 * One quantized record as the output's bytes (`dtype`), into `into` if given (its exact length,
 * 4-aligned), block of rows by block: a float32 output in place, float16 and bfloat16 through one
 * block's float32 (no unpacked or decoded copy of the whole tensor either way).
 */
export function dequantizeBytes(rec: TensorRecord, parts: StoredParts, dtype: FloatOut, into?: Uint8Array): Uint8Array {
  const n = rec.shape.reduce((a, b) => a * b, 1);
  const out = into ?? new Uint8Array(n * (dtype === "f32" ? 4 : 2));
  if (dtype === "f32") {
    for (const _ of dequantizedBlocks(rec, parts, undefined, undefined, new Float32Array(out.buffer, out.byteOffset, n)));
    return out;
  }
  const bits = new Uint16Array(out.buffer, out.byteOffset, n);
  const encode = dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits;
  for (const [from, to, values] of dequantizedBlocks(rec, parts)) encode(values, bits.subarray(from, to));
  return out;
}

/**
 * One record of a layout that re-encodes (compressed-tensors, MLX) as the output's bytes
 * (`dtype`): what the layout's runtime computes from the written tensors (`written`: [name,
 * bytes] pairs), into `into` if given (its exact length, 2-aligned). dequantize's work, on the
 * calling thread or a worker alike.
 */
export function layoutDequantizeBytes(
  layout: LayoutName,
  name: string,
  rec: TensorRecord,
  written: readonly (readonly [string, Uint8Array])[],
  dtype: FloatOut,
  into?: Uint8Array,
): Uint8Array {
  const values = layoutNamed(layout).dequantize!({ name, dtype: rec.source_dtype, shape: rec.shape }, geometryOf(rec) as StoredGeometry, new Map(written));
  const out = into ?? new Uint8Array(values.length * (dtype === "f32" ? 4 : 2));
  if (dtype === "f32") {
    out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return out;
  }
  const bits = new Uint16Array(out.buffer, out.byteOffset, values.length);
  (dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits)(values, bits);
  return out;
}
