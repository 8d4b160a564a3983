/**
 * A quantized record dequantized block of rows by block, so that comparing it with its original
 * needs one block's float32, not a copy of the whole tensor. The blocks are row slices as
 * quantize cuts them (quantize/row-split.ts: whole packed int4 row pairs, whole groups of rows, a
 * scale that covers every row left whole), so each block's values are the whole tensor's values
 * at those indices.
 */
import type { QuantizeStep } from "../../plan/plan.js";
import { scaleShapeOf, storedNamesOf, storedTensors, type StoredGeometry } from "../../plan/stored.js";
import { ERROR_BLOCK } from "../../quant/error-metrics.js";
import type { TensorRecord } from "../manifest.js";
import { rowSplitOf, slicedRange } from "../quantize/row-split.js";
import { dequantizeRecord, geometryOf, type StoredParts } from "./dequantize.js";

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number): number => (a / gcd(a, b)) * b;

/** Whether the kernels see a broadcast scale (dequantize.ts: it changes how int8 divides). */
const broadcast = (shape: readonly number[], scaleShape: readonly number[]) =>
  scaleShape.length !== shape.length || scaleShape.some((d, i) => d !== shape[i]);

/**
 * The record's float32 values as [start, end, values] element ranges in order, about
 * `targetElements` each; every block but the last starts and ends on a multiple of `align`
 * elements (ErrorAccumulator's block, so its sums come out as for the whole tensor). A tensor
 * that cannot be cut so comes as one block. The `values` array is reused from block to block.
 */
export function* dequantizedBlocks(
  rec: TensorRecord,
  parts: StoredParts,
  targetElements = 1 << 20,
  align = ERROR_BLOCK,
): Generator<[number, number, Float32Array]> {
  const shape = rec.shape;
  const n = shape.reduce((a, b) => a * b, 1);
  const whole = (): [number, number, Float32Array] => [0, n, dequantizeRecord(rec, parts)];
  const g = geometryOf(rec) as StoredGeometry;
  const stored = storedTensors(storedNamesOf("x"), shape, g);
  const step = { spec: { mode: g.mode, axis: g.axis, packAxis: g.packAxis, blockSize: g.blockSize }, source: { shape, byteLength: n * 4 }, stored };
  const split = n > targetElements ? rowSplitOf(step as unknown as QuantizeStep) : null;
  const rows = shape[0]!;
  const cols = n / rows;
  if (split === null || cols === 0) {
    yield whole();
    return;
  }
  const multiple = lcm(split.rowMultiple, align / gcd(align, cols));
  const per = Math.max(multiple, Math.floor(targetElements / cols / multiple) * multiple);
  const last = rows % per;
  const sliceShape = (k: number) => [k, ...shape.slice(1)];
  const sameBroadcast = (k: number) => broadcast(sliceShape(k), scaleShapeOf(sliceShape(k), g)) === broadcast(shape, scaleShapeOf(shape, g));
  if (per >= rows || (last !== 0 && (last < split.minLastRows || !sameBroadcast(last))) || !sameBroadcast(per)) {
    yield whole();
    return;
  }
  const block = new Float32Array(per * cols);
  for (let from = 0; from < rows; from += per) {
    const to = Math.min(rows, from + per);
    const k = to - from;
    const slice = (role: "values" | "scale" | "zero", bytes: Uint8Array): Uint8Array => {
      const s = split.stored[stored.findIndex((t) => t.role === role)]!;
      if (s === null) return bytes;
      const r = slicedRange(s, from, to);
      return bytes.subarray(r.offset, r.offset + r.length);
    };
    const sub: StoredParts = { values: slice("values", parts.values), scale: slice("scale", parts.scale), ...(parts.zero ? { zero: slice("zero", parts.zero) } : {}) };
    const subRec: TensorRecord = { ...rec, shape: sliceShape(k), ...(rec.pack_axis === 0 ? { orig_len: k } : {}) };
    yield [from * cols, to * cols, dequantizeRecord(subRec, sub, block.subarray(0, k * cols))];
  }
}
