/**
 * The abs-max reduction every quantizer starts from: the SIMD kernel where it applies, else a
 * scalar walk of the reduction plan (axes.ts) — the same bits either way.
 */
import { RunCursor, planAbsMax, type ReductionPlan } from "./axes.js";
import { simdAbsMaxAlong } from "./wasm/kernels.js";

/**
 * max(|x|) over `axes` (null = all), keepdims. NaN propagates as jnp.max does; the values are
 * the raw input magnitudes (no flush of subnormals: that belongs to the arithmetic that
 * consumes them, see f32.ts). Reducing over an empty axis is an error, as in jax.
 */
export function absMaxAlong(
  data: Float32Array,
  shape: readonly number[],
  axes: readonly number[] | null | ReductionPlan,
): { amax: Float32Array; shape: number[] } {
  const plan = axes !== null && "innerLen" in axes ? axes : planAbsMax(shape, axes);
  const amax = new Float32Array(plan.outSize);
  if (simdAbsMaxAlong(data, plan, amax)) return { amax, shape: plan.outShape };
  const n = plan.innerLen;
  const c = new RunCursor(plan);
  if (plan.innerReduced) {
    while (c.next()) {
      const o = c.outOffset;
      let m = amax[o]!;
      for (let i = c.inOffset, end = i + n; i < end; i++) m = Math.max(m, Math.abs(data[i]!));
      amax[o] = m;
    }
  } else {
    while (c.next()) {
      const inOff = c.inOffset;
      const outOff = c.outOffset;
      for (let i = 0; i < n; i++) amax[outOff + i] = Math.max(amax[outOff + i]!, Math.abs(data[inOff + i]!));
    }
  }
  return { amax, shape: plan.outShape };
}
