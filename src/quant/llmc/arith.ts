/**
 * torch's CPU arithmetic in a weight's dtype T (float32, bfloat16 or float16), as compressed-tensors
 * 0.19.0 runs it for model_free_ptq: every elementwise op on 16-bit tensors computes in float32
 * (ATen's opmath) and rounds the result to the 16-bit dtype, ties to even; float32 ops round once
 * to float32. Subnormals are kept (torch sets no flush-to-zero). Values travel as JS numbers holding
 * an exact float32 / bfloat16 value; NaN payloads and signs are not modelled here (the golden
 * vectors compare NaN as NaN, see docs/llmcompressor.md).
 */

import { f16BitsOf, f16Value } from "../convert.js";

/** A weight dtype model_free_ptq quantizes, by its torch name. */
export type LlmcDType = "float32" | "bfloat16" | "float16";

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);

/**
 * A double → float32 (storing into a Float32Array rounds to nearest even, as Math.fround) → the
 * nearest bfloat16 value, ties to even (torch's round_to_nearest_even). The double rounding is
 * exact for + - * / of float32 operands.
 */
export function roundBf16(x: number): number {
  if (x !== x) return NaN;
  F[0] = x;
  const b = U[0]!;
  U[0] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16;
  return F[0]!;
}

/** float32 value → bfloat16 bits as torch's `.to(torch.bfloat16)` writes a finite value (NaN → 0x7fc0). */
export function bf16Bits(x: number): number {
  if (x !== x) return 0x7fc0;
  F[0] = x;
  const b = U[0]!;
  return (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
}

/** A double → float32 → the nearest float16 value (torch's and numpy's conversion, ties to even). */
export function roundF16(x: number): number {
  return x !== x ? NaN : f16Value(f16BitsOf(x));
}

/** Rounds a double to T: `Math.fround` for float32, float32 then the 16-bit dtype otherwise. */
export type Rounder = (x: number) => number;

const ROUNDERS: Record<LlmcDType, Rounder> = {
  float32: Math.fround,
  bfloat16: roundBf16,
  float16: roundF16,
};

/** The rounding of T's elementwise ops: T(a op b) = round(a op b) for + - * / of T values. */
export function rounderOf(dtype: LlmcDType): Rounder {
  return ROUNDERS[dtype];
}

/** torch.finfo(T).eps: the scale that replaces a zero scale when no scale_dtype is set. */
export const EPS: Readonly<Record<LlmcDType, number>> = Object.freeze({ float32: 2 ** -23, bfloat16: 2 ** -7, float16: 2 ** -10 });

/** torch.finfo(T).tiny (the smallest normal), which generate_gparam clamps the absmax to. */
export const TINY: Readonly<Record<LlmcDType, number>> = Object.freeze({ float32: 2 ** -126, bfloat16: 2 ** -126, float16: 2 ** -14 });

/** T's value as the bits T stores (float32 bits, or the 16-bit pattern); NaN as torch writes it from float32. */
export function storedBits(x: number, dtype: LlmcDType): number {
  if (dtype === "bfloat16") return bf16Bits(x);
  if (dtype === "float16") return f16BitsOf(x);
  F[0] = x;
  return U[0]!;
}

/** torch.max / torch.min elementwise: NaN if either is NaN. */
export function maxNan(a: number, b: number): number {
  return a !== a || b !== b ? NaN : a > b ? a : b;
}
export function minNan(a: number, b: number): number {
  return a !== a || b !== b ? NaN : a < b ? a : b;
}

/** torch.clamp(x, lo, hi): NaN stays NaN. */
export function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}
