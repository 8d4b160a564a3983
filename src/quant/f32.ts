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

/**
 * float32 scalar arithmetic of one backend: with flush-to-zero (XLA:CPU, TensorFlow's Eigen) or
 * plain IEEE float32 that keeps subnormals (torch, numpy). Operands are flushed by the callers.
 */
export interface F32Arith {
  /** The backend's view of an operand: flushed to a signed zero if subnormal, or as is. */
  flush(x: number): number;
  add(a: number, b: number): number;
  sub(a: number, b: number): number;
  mul(a: number, b: number): number;
  div(a: number, b: number): number;
}

const FLUSHING: F32Arith = { flush: flushSubnormal, add: f32Add, sub: f32Sub, mul: f32Mul, div: f32Div };
const KEEPING: F32Arith = {
  flush: (x) => x,
  add: (a, b) => Math.fround(a + b),
  sub: (a, b) => Math.fround(a - b),
  mul: (a, b) => Math.fround(a * b),
  div: (a, b) => Math.fround(a / b),
};

/** The arithmetic of a backend that flushes subnormals (`flush`) or keeps them. */
export function f32Arith(flush: boolean): F32Arith {
  return flush ? FLUSHING : KEEPING;
}
