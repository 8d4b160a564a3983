/**
 * `keras.quantizers.pack_int4` / `unpack_int4`: two int4 values per byte along one axis, the
 * even index in the low nibble and the odd index in the high nibble; an odd length is padded
 * with one zero. Keras packs in numpy (int8 shifts wrap), so bytes ≥ 0x80 read back negative
 * in int8. Unpacking masks both nibbles and, for int8, sign-extends them ((n ^ 8) - 8); for
 * uint8 the nibbles stay 0..15. Either packed dtype unpacks to the same values.
 */
import { KquantError } from "../errors.js";
import { sizeOf, type Tensor } from "./tensor.js";
import { simdPackPairs, simdPackRows } from "./wasm/kernels.js";

export type Int4Container = "int8" | "uint8";
type Bytes = Int8Array | Uint8Array;

function checkContainer(dtype: string, what: string): Int4Container {
  if (dtype !== "int8" && dtype !== "uint8") {
    throw new KquantError(`${what}: expected dtype to be 'int8' or 'uint8', but got '${dtype}'`);
  }
  return dtype;
}

function resolveAxis(axis: number, rank: number, what: string): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new KquantError(`${what}: axis ${axis} is out of bounds for a tensor of rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** outer × length × inner view of a row-major shape around `axis`. */
function split(shape: readonly number[], axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis]!, sizeOf(shape.slice(axis + 1))];
}

function asBytes(a: Bytes): Uint8Array {
  return a instanceof Uint8Array ? a : new Uint8Array(a.buffer, a.byteOffset, a.length);
}

/**
 * The packing kernel on raw bytes (any int4 values in any integer bytes; only the low nibble
 * of each is kept). `out` must hold outer × ceil(len/2) × inner bytes. Exported so callers can
 * pack straight from a quantizer's int8 output without building a Tensor.
 */
export function packNibbles(src: Bytes, shape: readonly number[], axis: number, out: Bytes): void {
  const [outer, len, inner] = split(shape, axis);
  const half = len >> 1;
  const packedLen = (len + 1) >> 1;
  if (inner === 1 && len % 2 === 0 && simdPackPairs(asBytes(src), asBytes(out))) return;
  if (inner === 1) {
    // Packing along the last axis (the CLI's usual case): pairs are adjacent bytes.
    for (let o = 0; o < outer; o++) {
      const s = o * len;
      const d = o * packedLen;
      for (let k = 0; k < half; k++) out[d + k] = (src[s + 2 * k]! & 15) | ((src[s + 2 * k + 1]! & 15) << 4);
      if (len & 1) out[d + half] = src[s + len - 1]! & 15;
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    const srcBase = o * len * inner;
    const dstBase = o * packedLen * inner;
    const bytesIn = asBytes(src).subarray(srcBase, srcBase + 2 * half * inner);
    const bytesOut = asBytes(out).subarray(dstBase, dstBase + half * inner);
    if (!simdPackRows(bytesIn, half, inner, bytesOut)) {
      for (let k = 0; k < half; k++) {
        const lo = srcBase + 2 * k * inner;
        const hi = lo + inner;
        const dst = dstBase + k * inner;
        for (let i = 0; i < inner; i++) out[dst + i] = (src[lo + i]! & 15) | ((src[hi + i]! & 15) << 4);
      }
    }
    if (len & 1) {
      const lo = srcBase + (len - 1) * inner;
      const dst = dstBase + half * inner;
      for (let i = 0; i < inner; i++) out[dst + i] = src[lo + i]! & 15;
    }
  }
}

export function packInt4(
  arr: Tensor,
  axis = 0,
  dtype: Int4Container = "int8",
): { packed: Tensor<Bytes>; packedShape: number[]; origLen: number } {
  const what = "pack_int4";
  checkContainer(dtype, what);
  if (arr.dtype !== dtype) throw new KquantError(`${what}: expected ${dtype} tensor for packing, got ${arr.dtype}`);
  const ax = resolveAxis(axis, arr.shape.length, what);
  const origLen = arr.shape[ax]!;
  const packedShape = [...arr.shape];
  packedShape[ax] = (origLen + 1) >> 1;
  const out = dtype === "int8" ? new Int8Array(sizeOf(packedShape)) : new Uint8Array(sizeOf(packedShape));
  packNibbles(arr.data as Bytes, arr.shape, ax, out);
  return { packed: { dtype, shape: packedShape, data: out }, packedShape: [...packedShape], origLen };
}

/**
 * Unpacks the first `origLen` int4 values along `axis`. As in Keras (a Python slice),
 * `origLen` larger than twice the packed length just keeps everything.
 */
export function unpackInt4(packed: Tensor, origLen: number, axis = 0, dtype: Int4Container = "int8"): Tensor<Bytes> {
  const what = "unpack_int4";
  checkContainer(dtype, what);
  if (packed.dtype !== "int8" && packed.dtype !== "uint8") {
    throw new KquantError(`${what}: expected int8 or uint8 tensor for unpacking, got ${packed.dtype}`);
  }
  if (!Number.isInteger(origLen) || origLen < 0) {
    throw new KquantError(`${what}: original length must be a non-negative integer, got ${origLen}`);
  }
  const ax = resolveAxis(axis, packed.shape.length, what);
  const [outer, packedLen, inner] = split(packed.shape, ax);
  const len = Math.min(origLen, 2 * packedLen);
  const shape = [...packed.shape];
  shape[ax] = len;
  const out = dtype === "int8" ? new Int8Array(sizeOf(shape)) : new Uint8Array(sizeOf(shape));
  // For int8, (n ^ 8) - 8 sign-extends a nibble; for uint8 it is the identity on 0..15.
  const bias = dtype === "int8" ? 8 : 0;
  const src = packed.data as Bytes;
  for (let o = 0; o < outer; o++) {
    const srcBase = o * packedLen * inner;
    const dstBase = o * len * inner;
    for (let j = 0; j < len; j++) {
      const from = srcBase + (j >> 1) * inner;
      const to = dstBase + j * inner;
      const shift = (j & 1) * 4;
      for (let i = 0; i < inner; i++) out[to + i] = (((src[from + i]! >> shift) & 15) ^ bias) - bias;
    }
  }
  return { dtype, shape, data: out };
}
