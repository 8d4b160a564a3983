/**
 * Splitting one tensor's quantization into independent row ranges (along axis 0), so that two
 * cores can share a single large tensor and a worker never holds more than a slice of it.
 *
 * A range of rows is independent when axis 0 is neither reduced for the scale nor packed, and
 * every stored tensor keeps axis 0 at the source's length: then each stored tensor is, byte for
 * byte, the row slices' results laid end to end (row-major, axis 0 outermost). Per-tensor scales
 * (one amax over everything) and reductions or packing along axis 0 do not split.
 */
import { byteLengthOf } from "../formats/dtypes.js";
import type { PlannedTensor } from "../formats/types.js";
import type { QuantizeStep } from "../plan/plan.js";

export interface RowSplit {
  rows: number;
  /** Source bytes per row. */
  sourceRowBytes: number;
  /** Bytes per row of each stored tensor, in stored order (values, scale, zero). */
  storedRowBytes: number[];
}

export function storedOf(step: QuantizeStep): PlannedTensor[] {
  return [step.values, step.scale, ...(step.zero ? [step.zero] : [])];
}

export function rowSplitOf(step: QuantizeStep): RowSplit | null {
  const { spec, source } = step;
  const rows = source.shape[0];
  if (source.shape.length < 2 || rows === undefined || rows < 2) return null;
  if (spec.axis === null || spec.axis === 0 || spec.packAxis === 0) return null;
  // Grouping is only along axis 0 or (by transposing) axis 1 of a 2-D tensor.
  if (spec.mode === "int4_grouped" && spec.axis !== 1) return null;
  const stored = storedOf(step);
  if (stored.some((t) => t.shape[0] !== rows)) return null;
  return {
    rows,
    sourceRowBytes: source.byteLength / rows,
    storedRowBytes: stored.map((t) => byteLengthOf(t.dtype, t.shape) / rows),
  };
}

/** The step for rows [from, to) alone: the same spec on the slice's shapes. */
export function sliceStep(step: QuantizeStep, split: RowSplit, from: number, to: number): QuantizeStep {
  const n = to - from;
  const withRows = (t: PlannedTensor): PlannedTensor => ({ ...t, shape: [n, ...t.shape.slice(1)] });
  return {
    ...step,
    source: { ...step.source, shape: [n, ...step.source.shape.slice(1)], byteLength: n * split.sourceRowBytes },
    values: withRows(step.values),
    scale: withRows(step.scale),
    ...(step.zero ? { zero: withRows(step.zero) } : {}),
  };
}

/**
 * A tensor whose scale reduces over its rows (axis 0, or one scale per tensor) splits into row
 * slices too, for two passes (quantize-tensor.ts: every slice's abs-max, then every slice's values
 * with the whole tensor's scale). Only the values are sliced; int4 packed along axis 0 pairs rows,
 * so its slices hold an even number of rows (all but the last).
 */
export interface ReducedSplit {
  rows: number;
  sourceRowBytes: number;
  /** Source rows per stored values row: 2 when int4 packs pairs of rows, else 1. */
  rowsPerValuesRow: number;
  valuesRowBytes: number;
}

export function reducedSplitOf(step: QuantizeStep): ReducedSplit | null {
  const { spec, source } = step;
  const rows = source.shape[0];
  if (source.shape.length < 2 || rows === undefined || rows < 2) return null;
  if (spec.mode === "int4_grouped" || (spec.axis !== null && spec.axis !== 0)) return null;
  return {
    rows,
    sourceRowBytes: source.byteLength / rows,
    rowsPerValuesRow: spec.packAxis === 0 ? 2 : 1,
    valuesRowBytes: byteLengthOf(step.values.dtype, step.values.shape) / step.values.shape[0]!,
  };
}

/** The step for rows [from, to) of a reduced split: the slice's source and values, the whole tensor's scale. */
export function reducedSliceStep(step: QuantizeStep, split: ReducedSplit, from: number, to: number): QuantizeStep {
  const n = to - from;
  return {
    ...step,
    source: { ...step.source, shape: [n, ...step.source.shape.slice(1)], byteLength: n * split.sourceRowBytes },
    values: { ...step.values, shape: [Math.ceil(n / split.rowsPerValuesRow), ...step.values.shape.slice(1)] },
  };
}

/**
 * Row ranges of at most about `targetBytes` of source each (at least `multiple` rows per range, and
 * a multiple of it in all but the last).
 */
export function rowRanges(split: { rows: number; sourceRowBytes: number }, targetBytes: number, multiple = 1): [number, number][] {
  const per = Math.max(multiple, Math.floor(targetBytes / split.sourceRowBytes / multiple) * multiple);
  const out: [number, number][] = [];
  for (let r = 0; r < split.rows; r += per) out.push([r, Math.min(split.rows, r + per)]);
  return out;
}
