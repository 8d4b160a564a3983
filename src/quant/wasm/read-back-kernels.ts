/**
 * JS drivers of the read-back kernels (read-back-module.ts): dequantize walks a tensor in
 * windows of CHUNK elements, laying each run's scale (and zero point) beside its values in the
 * module's memory, one kernel call per window; the error sums take a block at a time. They report
 * `false` / null where they do not apply (no WebAssembly SIMD, a NaN or infinite factor, whose NaN
 * bits the scalar loops decide) and the callers keep their scalar loops, which give the same bits.
 */
import { CHUNK, H, OUT, PK, S, X, simd } from "./kernels.js";

/** A run of elements sharing one scale entry (`step` 0) or walking the scale (`step` 1), as dequantize.ts's forEachScaleRun visits them. */
export type RunWalker = (visit: (start: number, length: number, scaleIndex: number, scaleStep: number) => void) => void;

/** What a dequantize kernel reads: int8 codes × factor, grouped codes with zero points, or float32 values × scale. */
export type DequantizeSource = { kind: "int8"; q: Int8Array; factor: Float32Array } | { kind: "zero-point"; q: Int8Array; scale: Float32Array; zero: Int8Array } | { kind: "float32"; x: Float32Array; scale: Float32Array };

const allFinite = (a: Float32Array): boolean => {
  for (let i = 0; i < a.length; i++) if (a[i]! - a[i]! !== 0) return false;
  return true;
};

/**
 * out = the source dequantized run by run (runs in order, covering out), or false with out
 * untouched when the kernels cannot do it. Factors must be finite; for float32 sources, the values too.
 */
export function simdDequantizeRuns(src: DequantizeSource, runs: RunWalker, out: Float32Array): boolean {
  const k = simd();
  const factor = src.kind === "int8" ? src.factor : src.scale;
  if (k === null || !allFinite(factor) || (src.kind === "float32" && !allFinite(src.x))) return false;
  const zero = src.kind === "zero-point" ? src.zero : null;
  let chunkStart = 0;
  let filled = 0;
  const flush = (): void => {
    if (filled === 0) return;
    const end = chunkStart + filled;
    if (src.kind === "float32") {
      k.h.set(src.x.subarray(chunkStart, end));
      k.e.deq_f32_v(H, S, X, filled);
    } else {
      k.out.set(src.q.subarray(chunkStart, end));
      if (src.kind === "int8") k.e.deq_i8_v(OUT, S, X, filled);
      else k.e.deq_zp_v(OUT, S, H, X, filled);
    }
    out.set(k.x.subarray(0, filled), chunkStart);
    chunkStart = end;
    filled = 0;
  };
  // Runs come in order and cover the tensor, so a window's elements are contiguous.
  runs((_start, length, s, step) => {
    let j = s;
    for (let left = length; left > 0; ) {
      const take = Math.min(left, CHUNK - filled);
      if (step === 0) {
        k.s.fill(factor[j]!, filled, filled + take);
        if (zero) k.h8.fill(zero[j]!, filled, filled + take);
      } else {
        k.s.set(factor.subarray(j, j + take), filled);
        if (zero) k.h8.set(zero.subarray(j, j + take), filled);
        j += take;
      }
      filled += take;
      left -= take;
      if (filled === CHUNK) flush();
    }
  });
  flush();
  return true;
}

/**
 * Grouped int4 along the last axis, packed along it: out = ftz(scale · f32(q − zero)) for the
 * rows × cols codes packed two per byte in `packed` (cols even), with scale / zero per group of
 * `blockSize` codes of each row ([rows, ceil(cols / blockSize)]) — what unpackInt4 followed by
 * dequantizeZeroPoint gives, block by block of whole rows without a JS step per group. False
 * where it does not apply (no SIMD, an odd or over-long row, a NaN or infinite scale).
 */
export function simdDequantizeRowGroups(packed: Uint8Array, scale: Float32Array, zero: Int8Array, rows: number, cols: number, blockSize: number, out: Float32Array): boolean {
  const k = simd();
  if (k === null || cols % 2 !== 0 || cols > CHUNK || rows === 0 || !allFinite(scale)) return false;
  const bs = Math.min(blockSize, cols);
  const nGroups = Math.ceil(cols / bs);
  const perBlock = Math.floor(CHUNK / cols);
  for (let r0 = 0; r0 < rows; r0 += perBlock) {
    const runs = Math.min(perBlock, rows - r0);
    const len = runs * cols;
    const m = runs * nGroups;
    k.pk.set(packed.subarray((r0 * cols) / 2, (r0 * cols + len) / 2));
    k.e.unpack_pairs(PK, OUT, len / 2);
    k.s.set(scale.subarray(r0 * nGroups, r0 * nGroups + m));
    k.h8.set(zero.subarray(r0 * nGroups, r0 * nGroups + m));
    k.e.deq_groups(OUT, S, H, X, runs, cols, bs);
    out.set(k.x.subarray(0, len), r0 * cols);
  }
  return true;
}

/** The sums of ErrorAccumulator over pairs [from, from + n & ~3): Σe², Σr², Σa², Σr·a, max |e|. */
export interface ErrorSums {
  sumSqErr: number;
  sumSqRef: number;
  sumSqApprox: number;
  dot: number;
  maxAbs: number;
  /** Pairs summed (a multiple of 4; the caller sums the rest). */
  count: number;
}

/** The sums of pairs [from, to) in whole vectors, or null when some error is not finite (or no SIMD). `to - from` ≤ CHUNK. */
export function simdErrorSums(reference: Float32Array, approx: Float32Array, from: number, to: number): ErrorSums | null {
  const k = simd();
  if (k === null) return null;
  const n = to - from;
  k.x.set(reference.subarray(from, to));
  k.s.set(approx.subarray(from, to));
  if (k.e.err_sums(X, S, n, OUT) !== 0) return null;
  const r = k.out64;
  return { sumSqErr: r[0]!, sumSqRef: r[1]!, sumSqApprox: r[2]!, dot: r[3]!, maxAbs: r[4]!, count: n & ~3 };
}

/** What verify's content checks need to know of a byte array (see byte_ranges). */
export interface ByteRanges {
  /** Bytes as int8. */
  min: number;
  max: number;
  /** Low nibbles as signed 4-bit values; high nibbles are (byte as int8) >> 4, so min >> 4 and max >> 4. */
  minLow: number;
  maxLow: number;
  /** Unsigned max of byte & 0x7f (0x7f: some float8 e4m3fn NaN) and of byte & 0x7c (0x7c: some e5m2 NaN or Inf). */
  max7f: number;
  max7c: number;
}

/**
 * The ranges of `bytes`, or null without SIMD. Window by window; the last window is padded with
 * zeros to whole vectors, and they count: 0 lies in every range a check asks about, so a range
 * that holds the bytes holds it too (at worst a check falls back to its exact loop).
 */
export function simdByteRanges(bytes: Uint8Array): ByteRanges | null {
  const k = simd();
  if (k === null) return null;
  const r: ByteRanges = { min: 127, max: -128, minLow: 7, maxLow: -8, max7f: 0, max7c: 0 };
  const lanes = new Int8Array(k.e.memory.buffer, S, 96);
  for (let from = 0; from < bytes.length; from += CHUNK) {
    const n = Math.min(CHUNK, bytes.length - from);
    k.outU8.set(bytes.subarray(from, from + n));
    k.outU8.fill(0, n, n + 16);
    k.e.byte_ranges(OUT, n, S);
    for (let i = 0; i < 16; i++) {
      r.min = Math.min(r.min, lanes[i]!);
      r.max = Math.max(r.max, lanes[16 + i]!);
      r.minLow = Math.min(r.minLow, lanes[32 + i]! >> 4);
      r.maxLow = Math.max(r.maxLow, lanes[48 + i]! >> 4);
      r.max7f = Math.max(r.max7f, lanes[64 + i]! & 0xff);
      r.max7c = Math.max(r.max7c, lanes[80 + i]! & 0xff);
    }
  }
  return r;
}
