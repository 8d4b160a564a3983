/** What one tensor's quantization looks like: the mode and its Keras arguments. */
import type { KerasBackend } from "../quant/backend.js";
import { modeNamed, type Mode } from "../modes/registry.js";

export type { Mode };

export interface QuantSpec {
  mode: Mode;
  /** The axis reduced to compute the scale (Keras's meaning), or null for one scale per tensor. */
  axis: number | null;
  /** int4 modes: the axis the nibbles are packed along. */
  packAxis?: number;
  /** int4_grouped: rows per group along `axis`. */
  blockSize?: number;
  /** Integer modes: the quantized value range. */
  valueRange?: [number, number];
  epsilon?: number;
  /** float8: `computeFloat8Scale`'s margin. */
  margin?: number;
  /**
   * Which Keras code the bytes follow: the `keras.quantizers` functions (the default), or what
   * `Dense.quantize` stores ("dense-layer": numpy arithmetic, which differs for grouped int4 only;
   * --layout keras).
   */
  kerasPath?: "quantizers" | "dense-layer";
  /** The Keras backend whose arithmetic the bytes reproduce (default tensorflow, Keras's default). */
  backend?: KerasBackend;
}

/** Keras's defaults for `mode` (its descriptor's), the ones `kquant quantize --<mode>` uses unless told otherwise. */
export function defaultSpec(mode: Mode): QuantSpec {
  return modeNamed(mode).defaults();
}

/**
 * How one tensor's stored tensors turn back into float32, complete enough to implement from the
 * manifest alone (kept in each record as `dequantize`; each mode's descriptor writes its own).
 * `values`, `scale` and `zero` are the stored tensors the record names, as float32 after the
 * unpacking shown; numpy broadcasting (the scale keeps the reduced axis as 1); `unpack_int4` is
 * keras.quantizers.unpack_int4 (low nibble first, sign-extended); `repeat` is numpy's. `spec`'s
 * axes are non-negative, `shape` is the source's, e.g. for grouped int4 of [64, 176] in groups of
 * 32 along axis 1:
 *   q = unpack_int4(values, orig_len=176, axis=1); (q - repeat(zero, 32, axis=1)[:, :176]) * repeat(scale, 32, axis=1)[:, :176]
 */
export function dequantizeFormula(spec: QuantSpec, shape: readonly number[]): string {
  return modeNamed(spec.mode).formula(spec, shape);
}
