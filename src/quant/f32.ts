/**
 * float32 scalar arithmetic as XLA:CPU does it: each op rounds once to float32 (Math.fround
 * of the double op is exact for + - * /, a double holds every float32 product and the
 * quotient's double rounding cannot go wrong), then flush-to-zero turns a subnormal result
 * into a zero of the same sign. Operands are flushed by the callers (denormals-are-zero).
 */

/** The smallest normal float32; anything strictly inside ±MIN_NORMAL is subnormal or zero. */
export const MIN_NORMAL = 2 ** -126;

/** XLA:CPU's FTZ/DAZ on a float32 value: subnormals become a zero of the same sign. */
export function flushSubnormal(x: number): number {
  return x < MIN_NORMAL && x > -MIN_NORMAL ? x * 0 : x;
}

/** float32(a op b) as XLA:CPU computes it (round to float32, then flush). */
export function f32Add(a: number, b: number): number {
  return flushSubnormal(Math.fround(a + b));
}
export function f32Sub(a: number, b: number): number {
  return flushSubnormal(Math.fround(a - b));
}
export function f32Mul(a: number, b: number): number {
  return flushSubnormal(Math.fround(a * b));
}
export function f32Div(a: number, b: number): number {
  return flushSubnormal(Math.fround(a / b));
}
