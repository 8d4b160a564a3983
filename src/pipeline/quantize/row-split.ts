/**
 * Splitting one tensor's quantization into row ranges (along axis 0), so that two cores can share
 * a single large tensor and no thread holds more than a slice of it.
 *
 * Each stored tensor that keeps axis 0 is, byte for byte, its slices' results laid end to end
 * (row-major, axis 0 outermost), as long as no slice boundary falls inside one of its rows: int4
 * packed along axis 0 makes one row of two source rows, grouped int4 along axis 0 one scale row of
 * `blockSize` source rows, so slices hold whole multiples of those. A scale that reduces over all
 * rows (axis 0, or one per tensor) is not sliced: such tensors take two passes (`reduced`;
 * quantize-tensor.ts): every slice's abs-max, then every slice's values with the tensor's scale.
 */
import { byteLengthOf } from "../../formats/dtypes.js";
import type { QuantizeStep } from "../../plan/plan.js";
import type { StoredTensor } from "../../plan/stored.js";
import { modeNamed } from "../../modes/registry.js";

/** How a stored tensor follows the source's rows: `rowsPer` source rows make one of its rows. */
export interface SlicedTensor {
  rowsPer: number;
  rowBytes: number;
}

export interface RowSplit {
  rows: number;
  /** Source bytes per row. */
  sourceRowBytes: number;
  /** Every slice but the last holds a multiple of this many rows. */
  rowMultiple: number;
  /** A last slice shorter than this joins the one before (see rowSplitOf). */
  minLastRows: number;
  /** Per stored tensor, in stored order (values, scale, zero); null for a scale that is not sliced. */
  stored: (SlicedTensor | null)[];
  /** The scale reduces over every row: two passes. */
  reduced: boolean;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

export function rowSplitOf(step: QuantizeStep): RowSplit | null {
  const { spec, source } = step;
  const rows = source.shape[0];
  if (source.shape.length < 2 || rows === undefined || rows < 2) return null;
  const grouped = modeNamed(spec.mode).grouped;
  const groupsOfRows = grouped && spec.axis === 0;
  const reduced = !grouped && (spec.axis === null || spec.axis === 0);
  const valuesRowsPer = spec.packAxis === 0 ? 2 : 1;
  // The zero point (grouped int4) is laid out as the scale.
  const scaleRowsPer = reduced ? null : groupsOfRows ? spec.blockSize! : 1;
  const stored = step.stored.map((t): SlicedTensor | null => {
    const rowsPer = t.role === "values" ? valuesRowsPer : scaleRowsPer;
    return rowsPer === null ? null : { rowsPer, rowBytes: byteLengthOf(t.dtype, t.shape) / t.shape[0]! };
  });
  const rowMultiple = stored.reduce((m, s) => (s === null ? m : (m * s.rowsPer) / gcd(m, s.rowsPer)), 1);
  // Keras pads a partial last group with zeros only when there is more than one group, so the
  // slice that holds a partial last group must hold a whole group too, as the tensor does.
  const partialLastGroup = groupsOfRows && rows > spec.blockSize! && rows % spec.blockSize! !== 0;
  return { rows, sourceRowBytes: source.byteLength / rows, rowMultiple, minLastRows: partialLastGroup ? spec.blockSize! + 1 : 1, stored, reduced };
}

/** The step for rows [from, to) alone: the same spec on the slice's shapes (a reduced scale stays whole). */
export function sliceStep(step: QuantizeStep, split: RowSplit, from: number, to: number): QuantizeStep {
  const n = to - from;
  const sliced = (t: StoredTensor, s: SlicedTensor | null): StoredTensor =>
    s === null ? t : { ...t, shape: [Math.ceil(n / s.rowsPer), ...t.shape.slice(1)] };
  return {
    ...step,
    source: { ...step.source, shape: [n, ...step.source.shape.slice(1)], byteLength: n * split.sourceRowBytes },
    stored: step.stored.map((t, j) => sliced(t, split.stored[j]!)),
  };
}

/** Where rows [from, to) of a sliced stored tensor lie, relative to the tensor's first byte. */
export function slicedRange(s: SlicedTensor, from: number, to: number): { offset: number; length: number } {
  return { offset: (from / s.rowsPer) * s.rowBytes, length: Math.ceil((to - from) / s.rowsPer) * s.rowBytes };
}

/** Row ranges of about `targetBytes` of source each, whole multiples of the split's rows but the last. */
export function rowRanges(split: RowSplit, targetBytes: number): [number, number][] {
  const m = split.rowMultiple;
  const per = Math.max(m, Math.floor(targetBytes / split.sourceRowBytes / m) * m);
  const out: [number, number][] = [];
  for (let r = 0; r < split.rows; r += per) out.push([r, Math.min(split.rows, r + per)]);
  const last = out[out.length - 1]!;
  if (out.length > 1 && last[1] - last[0] < split.minLastRows) {
    out.pop();
    out[out.length - 1]![1] = split.rows;
  }
  return out;
}
