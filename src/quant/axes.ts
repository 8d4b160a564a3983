/**
 * Axis handling and the reduction geometry shared by every quantizer (pure: the abs-max that
 * walks it lives in absmax-along.ts, beside the SIMD kernels it drives).
 *
 * A reduction over arbitrary axes of a row-major tensor is planned once: adjacent dimensions
 * that are both reduced (or both kept) are merged and size-1 dimensions dropped, leaving
 * alternating runs. The innermost run is walked by a tight loop; only the outer runs use an
 * odometer, so the per-element cost is one load and one compare whatever the axes are.
 */
import { KquantError } from "../errors.js";

/**
 * Keras/numpy axis argument → sorted, unique, non-negative axes. `null` means every axis.
 * Keras (jax) rejects out-of-range and repeated axes; so do we.
 */
export function normalizeAxes(axis: number | readonly number[] | null, rank: number): number[] {
  if (axis === null) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axis === "number" ? [axis] : [...axis];
  const out: number[] = [];
  for (const a of list) {
    if (!Number.isInteger(a)) throw new KquantError(`axis ${a} is not an integer`);
    if (a < -rank || a >= rank) {
      throw new KquantError(`axis ${a} is out of bounds for a tensor of rank ${rank}`);
    }
    const n = a < 0 ? a + rank : a;
    if (out.includes(n)) throw new KquantError(`repeated axis ${a} in ${JSON.stringify(list)}`);
    out.push(n);
  }
  return out.sort((x, y) => x - y);
}

/** The shape a keepdims reduction over `axes` leaves (reduced dimensions become 1). */
export function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/**
 * A reduction walk: `outerSizes` / `outerInStride` / `outerOutStride` describe the odometer
 * dimensions (outermost first); the innermost run has `innerLen` elements and is either
 * reduced (all map to one output element) or kept (map to `innerLen` consecutive outputs).
 */
export interface ReductionPlan {
  inSize: number;
  outSize: number;
  outShape: number[];
  innerLen: number;
  innerReduced: boolean;
  outerSizes: number[];
  outerInStride: number[];
  outerOutStride: number[];
}

export function planReduction(shape: readonly number[], axes: readonly number[]): ReductionPlan {
  const runs: { size: number; reduced: boolean }[] = [];
  for (let i = 0; i < shape.length; i++) {
    const size = shape[i]!;
    if (size === 1) continue;
    const reduced = axes.includes(i);
    const last = runs[runs.length - 1];
    if (last && last.reduced === reduced) last.size *= size;
    else runs.push({ size, reduced });
  }
  if (runs.length === 0) runs.push({ size: 1, reduced: false });
  let inSize = 1;
  let outSize = 1;
  for (const r of runs) {
    inSize *= r.size;
    if (!r.reduced) outSize *= r.size;
  }
  const inner = runs[runs.length - 1]!;
  const outer = runs.slice(0, -1);
  const outerInStride: number[] = new Array<number>(outer.length);
  const outerOutStride: number[] = new Array<number>(outer.length);
  let inStride = inner.size;
  let outStride = inner.reduced ? 1 : inner.size;
  for (let i = outer.length - 1; i >= 0; i--) {
    const r = outer[i]!;
    outerInStride[i] = inStride;
    outerOutStride[i] = r.reduced ? 0 : outStride;
    inStride *= r.size;
    if (!r.reduced) outStride *= r.size;
  }
  return {
    inSize,
    outSize,
    outShape: keptShape(shape, axes),
    innerLen: inner.size,
    innerReduced: inner.reduced,
    outerSizes: outer.map((r) => r.size),
    outerInStride,
    outerOutStride,
  };
}

/**
 * Walks the innermost runs of a plan in input order: `while (c.next())` visits each run, whose
 * `plan.innerLen` input elements start at `c.inOffset` and map to output `c.outOffset`.
 * A cursor rather than a callback, so the caller's loop keeps its data in locals.
 */
export class RunCursor {
  inOffset = 0;
  outOffset = 0;
  private readonly counter: Int32Array;
  private started = false;
  private finished: boolean;

  constructor(private readonly plan: ReductionPlan) {
    this.counter = new Int32Array(plan.outerSizes.length);
    this.finished = plan.inSize === 0;
  }

  next(): boolean {
    if (this.finished) return false;
    if (!this.started) {
      this.started = true;
      return true;
    }
    const { outerSizes, outerInStride, outerOutStride } = this.plan;
    for (let d = outerSizes.length - 1; d >= 0; d--) {
      this.inOffset += outerInStride[d]!;
      this.outOffset += outerOutStride[d]!;
      if (++this.counter[d]! < outerSizes[d]!) return true;
      this.counter[d] = 0;
      this.inOffset -= outerInStride[d]! * outerSizes[d]!;
      this.outOffset -= outerOutStride[d]! * outerSizes[d]!;
    }
    this.finished = true;
    return false;
  }
}

/** The plan of an abs-max over `axes` (null = all); reducing over an empty axis is an error, as in jax. */
export function planAbsMax(shape: readonly number[], axes: readonly number[] | null): ReductionPlan {
  const ax = axes ?? shape.map((_, i) => i);
  for (const a of ax) {
    if (shape[a] === 0) {
      throw new KquantError(`cannot take the abs-max over axis ${a} of length 0 (shape ${JSON.stringify(shape)})`);
    }
  }
  return planReduction(shape, ax);
}
