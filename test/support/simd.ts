/** Helpers for tests that compare the SIMD kernels with the scalar loops. */
import { expect } from "vitest";
import { useSimd } from "../../src/quant/wasm/kernels.js";

/** `run()` with the SIMD kernels off: the scalar loops, the reference. */
export function scalar<T>(run: () => T): T {
  const was = useSimd(false);
  try {
    return run();
  } finally {
    useSimd(was);
  }
}

/** Asserts that `run()` gives the same `bytes` with the SIMD kernels off (the scalar twins) and on. */
export function sameOnAndOff<T>(run: () => T, bytes: (t: T) => string[]): void {
  expect(bytes(run())).toEqual(bytes(scalar(run)));
}

/** A linear congruential generator in [0, 1): the same values on every run. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}
