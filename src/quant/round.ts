/**
 * Round half to even, as numpy/jax `round` do (Math.round rounds halves up).
 * Exact for every double: `r - x` is computed without error when |x| < 2^52, and larger
 * doubles are already integers.
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
