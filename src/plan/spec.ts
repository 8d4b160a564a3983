/** What one tensor's quantization looks like: the mode and its Keras arguments. */
import type { KerasBackend } from "../quant/backend.js";

export type Mode = "int8" | "int4" | "int4_grouped" | "float8_e4m3fn" | "float8_e5m2";

export const MODES: readonly Mode[] = ["int8", "int4", "int4_grouped", "float8_e4m3fn", "float8_e5m2"];

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

/** Keras's defaults for each mode, the ones `kquant quantize --<mode>` uses unless told otherwise. */
export function defaultSpec(mode: Mode): QuantSpec {
  switch (mode) {
    case "int8":
      return { mode, axis: -1, valueRange: [-127, 127], epsilon: 1e-7 };
    case "int4":
      return { mode, axis: -1, valueRange: [-8, 7], epsilon: 1e-7 };
    case "int4_grouped":
      return { mode, axis: -1, blockSize: 128, valueRange: [-8, 7], epsilon: 1e-7 };
    case "float8_e4m3fn":
    case "float8_e5m2":
      return { mode, axis: null, margin: 0 };
  }
}

/**
 * How one tensor's stored tensors turn back into float32, complete enough to implement from the
 * manifest alone (kept in each record as `dequantize`). `values`, `scale` and `zero` are the
 * stored tensors the record names, as float32 after the unpacking shown; numpy broadcasting
 * (the scale keeps the reduced axis as 1); `unpack_int4` is keras.quantizers.unpack_int4 (low
 * nibble first, sign-extended); `repeat` is numpy's. `spec`'s axes are non-negative, `shape` is
 * the source's, e.g. for grouped int4 of [64, 176] in groups of 32 along axis 1:
 *   q = unpack_int4(values, orig_len=176, axis=1); (q - repeat(zero, 32, axis=1)[:, :176]) * repeat(scale, 32, axis=1)[:, :176]
 */
export function dequantizeFormula(spec: QuantSpec, shape: readonly number[]): string {
  const unpack = spec.packAxis !== undefined ? `q = unpack_int4(values, orig_len=${shape[spec.packAxis]}, axis=${spec.packAxis}); ` : "q = values; ";
  switch (spec.mode) {
    case "int8":
    case "int4":
      return `${unpack}q / scale`;
    case "int4_grouped": {
      const axis = spec.axis!;
      const n = shape[axis];
      const cut = axis === 0 ? `[:${n}]` : `[${", ".repeat(axis).replace(/, /g, ":, ")}:${n}]`;
      const expand = (t: string) => `repeat(${t}, ${spec.blockSize}, axis=${axis})${cut}`;
      return `${unpack}(q - ${expand("zero")}) * ${expand("scale")}`;
    }
    case "float8_e4m3fn":
    case "float8_e5m2":
      return `q = ${spec.mode}_to_float32(values); q * scale`;
  }
}

export function isInt4(mode: Mode): boolean {
  return mode === "int4" || mode === "int4_grouped";
}

export function isFloat8(mode: Mode): mode is "float8_e4m3fn" | "float8_e5m2" {
  return mode === "float8_e4m3fn" || mode === "float8_e5m2";
}
