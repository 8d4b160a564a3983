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

/** How a stored tensor turns back into floats, in words (kept in the manifest). */
export function dequantizeFormula(mode: Mode): string {
  switch (mode) {
    case "int8":
    case "int4":
      return "q / scale";
    case "int4_grouped":
      return "(q - zero) * scale";
    case "float8_e4m3fn":
    case "float8_e5m2":
      return "q * scale";
  }
}

export function isInt4(mode: Mode): boolean {
  return mode === "int4" || mode === "int4_grouped";
}

export function isFloat8(mode: Mode): mode is "float8_e4m3fn" | "float8_e5m2" {
  return mode === "float8_e4m3fn" || mode === "float8_e5m2";
}
