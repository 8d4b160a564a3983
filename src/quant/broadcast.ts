/**
 * numpy broadcasting of a float32 parameter (a scale, a min/max…) over a target shape, planned
 * so the hot loops index it incrementally instead of materialising it.
 */
import { KquantError } from "../errors.js";
import { sizeOf } from "./tensor.js";

/** A parameter (scale, min, max…) broadcast over a target: element i of the target uses
 * values[floor(i / inner) % period]. */
export interface ParamLayout {
  values: Float32Array;
  period: number;
  inner: number;
}

/** numpy's broadcast of two shapes, or a one-line error naming both. */
export function broadcastShapes(a: readonly number[], b: readonly number[], what: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < rank; k++) {
    const da = a[a.length - rank + k] ?? 1;
    const db = b[b.length - rank + k] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new KquantError(`${what}: shapes ${JSON.stringify(a)} and ${JSON.stringify(b)} do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** values (of `shape`) repeated to fill `target` by numpy broadcasting, materialised. */
export function expandTo(values: Float32Array, shape: readonly number[], target: readonly number[]): Float32Array {
  const rank = target.length;
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    const t = rank - shape.length + k;
    strides[t] = shape[k] === 1 ? 0 : s;
    s *= shape[k]!;
  }
  const n = sizeOf(target);
  const out = new Float32Array(n);
  const counter = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < n; i++) {
    out[i] = values[src]!;
    for (let d = rank - 1; d >= 0; d--) {
      src += strides[d]!;
      if (++counter[d]! < target[d]!) break;
      src -= strides[d]! * target[d]!;
      counter[d] = 0;
    }
  }
  return out;
}

/**
 * How `values` (of `shape`) broadcasts over `target` (which must be the broadcast result). The
 * usual cases — a scalar, or a parameter varying along one contiguous run of axes — need no
 * copy; anything else is materialised to the target's size.
 */
export function broadcastLayout(
  values: Float32Array,
  shape: readonly number[],
  target: readonly number[],
  what: string,
): ParamLayout {
  const out = broadcastShapes(shape, target, what);
  if (out.length !== target.length || out.some((d, k) => d !== target[k])) {
    throw new KquantError(
      `${what}: shape ${JSON.stringify(shape)} would broadcast the input ${JSON.stringify(target)} to ${JSON.stringify(out)}`,
    );
  }
  const rank = target.length;
  const varying: number[] = [];
  for (let k = 0; k < shape.length; k++) {
    const t = rank - shape.length + k;
    if (shape[k] !== 1 && target[t] !== 1) varying.push(t);
  }
  if (varying.length === 0) return { values, period: 1, inner: Math.max(1, sizeOf(target)) };
  const first = varying[0]!;
  const last = varying[varying.length - 1]!;
  let contiguous = true;
  for (let t = first; t <= last; t++) if (!varying.includes(t) && target[t] !== 1) contiguous = false;
  if (!contiguous) return { values: expandTo(values, shape, target), period: sizeOf(target), inner: 1 };
  return { values, period: sizeOf(target.slice(first, last + 1)), inner: sizeOf(target.slice(last + 1)) };
}
