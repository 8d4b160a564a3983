/**
 * compressed-tensors 0.19.0's decompression of one Linear weight [rows, cols] as model_free_ptq
 * wrote it (the compressors' `decompress`, which its model-free CompressedTensorsDequantizer runs;
 * lifecycle/forward_helpers.py `_dequantize`), byte for byte on CPU. Found by reading and running
 * it (fixtures/llmcompressor/gen_decompress.py):
 *
 *   pack-quantized, int-quantized  T(T(q − zp) · scale) in T, the scale's dtype (unpack_from_int32)
 *   float-quantized                T(fp8(q) · scale) in T; FP8_BLOCK's scale per 128 × 128 block
 *   nvfp4-pack-quantized           bf16(f32(e2m1(q) · f32(bf16(fp8 scale) / global))): the global
 *                                  scale divides (a float32 [1] promotes the division to float32)
 *   mxfp4-pack-quantized           bf16(e2m1(q) · bf16(2^(e − 127)))
 *   mxfp8-quantized                bf16(fp8(q) · bf16(2^(e − 127)))
 *
 * So the FP4 / MX formats come back in bfloat16 whatever the weight's dtype was (unpack_fp4_from_uint8's
 * default dtype, decompress_mx_scale's bfloat16). Products are formed in float32 and rounded to the
 * result dtype once, ties to even, subnormals kept (torch's opmath). A NaN result (0 · ∞ under an
 * E8M0 byte 255) is x86's default NaN, sign set; other NaN payloads are not modelled.
 */
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../convert.js";
import type { LlmcDType } from "./arith.js";
import { mxScale } from "./e8m0.js";
import { groupingOf } from "./linear.js";
import { formatOf, type LlmcPreset } from "./presets.js";
import { fp8Value } from "./qparams.js";
import { unpackColumnsInt32, unpackRowsInt32 } from "./unpack-int32.js";

/** E2M1 values by 4-bit code: kE2M1ToFloat[code & 7], negated when bit 3 is set (code 8 is −0). */
const E2M1_CODES = Float32Array.from({ length: 16 }, (_, c) => {
  const m = [0, 0.5, 1, 1.5, 2, 3, 4, 6][c & 7]!;
  return c & 8 ? -m : m;
});
/** float8_e4m3fn values by code (torch's decoding). */
const FP8 = Float32Array.from({ length: 256 }, (_, c) => fp8Value(c));

/** One decompressed weight: its dtype, its values (exact in that dtype) and their bytes. */
export interface LlmcDecompressed {
  dtype: LlmcDType;
  values: Float32Array;
  bytes: Uint8Array;
}

const aligned = (b: Uint8Array, width: number): Uint8Array => (b.byteOffset % width === 0 ? b : b.slice());
const int32s = (b: Uint8Array) => {
  const a = aligned(b, 4);
  return new Int32Array(a.buffer, a.byteOffset, a.byteLength / 4);
};

/** A float tensor's bytes in `dtype` as float32 values. */
export function llmcFloats(bytes: Uint8Array, dtype: LlmcDType): Float32Array {
  const a = aligned(bytes, 4);
  if (dtype === "float32") return new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4).slice();
  const bits = new Uint16Array(a.buffer, a.byteOffset, a.byteLength / 2);
  const out = new Float32Array(bits.length);
  (dtype === "bfloat16" ? bf16BitsToF32 : f16BitsToF32)(bits, out);
  return out;
}

/** Values exact in `dtype` as its bytes; a NaN as x86's default NaN (sign set). */
export function llmcBytesOf(values: Float32Array, dtype: LlmcDType): Uint8Array {
  if (dtype === "float32") {
    const out = new Float32Array(values);
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < out.length; i++) if (out[i] !== out[i]) bits[i] = 0xffc00000;
    return new Uint8Array(out.buffer);
  }
  const bits = new Uint16Array(values.length);
  (dtype === "bfloat16" ? f32ToBf16Bits : f32ToF16Bits)(values, bits);
  const nan = dtype === "bfloat16" ? 0xffc0 : 0xfe00;
  for (let i = 0; i < values.length; i++) if (values[i] !== values[i]) bits[i] = nan;
  return new Uint8Array(bits.buffer);
}

/** The dtype `decompress` returns for `preset`'s weights of dtype T (the scale's). */
export function llmcDecompressedDtype(preset: LlmcPreset, t: LlmcDType): LlmcDType {
  const format = formatOf(preset);
  return format === "nvfp4-pack-quantized" || format === "mxfp4-pack-quantized" || format === "mxfp8-quantized" ? "bfloat16" : t;
}

/**
 * Decompresses one weight [rows, cols] from its stored tensors' bytes (by suffix: weight or
 * weight_packed, weight_scale, weight_zero_point, weight_global_scale), `t` the dtype of a float
 * weight_scale (the weight's own; ignored where the scale is FP8 or E8M0). Shapes are the caller's
 * to check (src/modes/llmc-schemes.ts storedShapes).
 */
export function decompressLlmcLinear(preset: LlmcPreset, rows: number, cols: number, stored: ReadonlyMap<string, Uint8Array>, t: LlmcDType): LlmcDecompressed {
  const a = preset.weights!;
  const format = formatOf(preset);
  const get = (suffix: string) => {
    const b = stored.get(suffix);
    if (b === undefined) throw new Error(`decompress ${preset.name}: no ${suffix}`);
    return b;
  };
  const g = groupingOf(a, rows, cols);
  const n = rows * cols;
  const dtype = llmcDecompressedDtype(preset, t);
  // q: each element's code value (the product's first operand); scales: each group's multiplier.
  let q: Int8Array | Float32Array;
  let zp: Int8Array | null = null;
  let scales: Float32Array;
  if (a.type === "int") {
    q = format === "pack-quantized" ? unpackRowsInt32(int32s(get("weight_packed")), rows, cols, a.numBits) : new Int8Array(get("weight").slice().buffer);
    scales = llmcFloats(get("weight_scale"), t);
    if (!a.symmetric) zp = unpackColumnsInt32(int32s(get("weight_zero_point")), g.scaleRows, g.scaleCols, a.numBits);
  } else if (a.numBits === 8) {
    const codes = get("weight");
    q = new Float32Array(n);
    for (let i = 0; i < n; i++) q[i] = FP8[codes[i]!]!;
    scales = format === "mxfp8-quantized" ? Float32Array.from(get("weight_scale"), mxScale) : llmcFloats(get("weight_scale"), t);
  } else {
    const packed = get("weight_packed");
    q = new Float32Array(n);
    for (let k = 0; k < packed.length; k++) {
      q[2 * k] = E2M1_CODES[packed[k]! & 15]!;
      q[2 * k + 1] = E2M1_CODES[packed[k]! >> 4]!;
    }
    const raw = get("weight_scale");
    if (format === "nvfp4-pack-quantized") {
      const global = new Float32Array(aligned(get("weight_global_scale"), 4).slice().buffer)[0]!;
      scales = Float32Array.from(raw, (b) => fp8Value(b) / global);
    } else scales = Float32Array.from(raw, mxScale);
  }
  // Each product rounded to float32 by the store, then (16-bit results) to the result dtype, ties
  // to even, by llmcBytesOf: torch's opmath, one rounding of the exact float32 product.
  const products = new Float32Array(n);
  for (let r = 0, i = 0; r < rows; r++) {
    const base = g.rowBase(r);
    for (let k = 0; k < g.perRow; k++) {
      const s = scales[base + k]!;
      const end = i + g.len;
      if (zp === null) for (; i < end; i++) products[i] = q[i]! * s;
      else for (const z = zp[base + k]!; i < end; i++) products[i] = (q[i]! - z) * s;
    }
  }
  const bytes = llmcBytesOf(products, dtype);
  const values = dtype === "float32" ? products : llmcFloats(bytes, dtype);
  return { dtype, values, bytes };
}
