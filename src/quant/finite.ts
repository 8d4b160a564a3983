import { simdCountNonFinite } from "./wasm/kernels.js";

/** Count of NaN and ±Inf values: the check that stops a run before bad numbers are written. */
export function countNonFinite(data: Float32Array): number {
  const fast = simdCountNonFinite(data);
  return fast >= 0 ? fast : countNonFiniteScalar(data);
}

export function countNonFiniteScalar(data: Float32Array): number {
  let bad = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    // v - v is NaN exactly for NaN and ±Inf; one compare, no call.
    if (v - v !== 0) bad++;
  }
  return bad;
}
