/**
 * Checks of stored codes that need their bytes: integer codes inside a value range, both nibbles
 * of packed int4 inside it and the padding nibble zero, no NaN (or Inf) float8 codes. Each returns
 * one line per problem, counting the bad codes and naming the first.
 */
import type { Float8Kind } from "../quant/float8.js";
import { simdByteRanges } from "../quant/wasm/read-back-kernels.js";

/**
 * Counts the bytes whose flag in `bad` (indexed by the byte's unsigned value) is 1, with the first
 * such index: one table load per byte and no branch, several times faster than comparing each
 * code (integrity-only `verify` is mostly this and the hashes).
 */
function countFlagged(bytes: Uint8Array, bad: Uint8Array, from = 0, to = bytes.length): { count: number; first: number } {
  let count = 0;
  for (let i = from; i < to; i++) count += bad[bytes[i]!]!;
  if (count === 0) return { count, first: -1 };
  let first = from;
  while (bad[bytes[first]!] === 0) first++;
  return { count, first };
}

/** A 256-entry table: 1 where `isBad(byte)`. */
function byteTable(isBad: (byte: number) => boolean): Uint8Array {
  return Uint8Array.from({ length: 256 }, (_, b) => (isBad(b) ? 1 : 0));
}

const asBytes = (a: Int8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const signed8 = (b: number) => (b << 24) >> 24;
const lowNibble = (b: number) => ((b & 0x0f) ^ 8) - 8;
const highNibble = (b: number) => ((b >> 4) ^ 8) - 8;

/** int8 codes outside [lo, hi]: how many and the first one. */
export function outsideRange(codes: Int8Array, lo: number, hi: number): string | null {
  const r = simdByteRanges(asBytes(codes));
  if (r !== null && r.min >= lo && r.max <= hi) return null;
  const { count, first } = countFlagged(asBytes(codes), byteTable((b) => signed8(b) < lo || signed8(b) > hi));
  return count === 0 ? null : `${count} code(s) outside [${lo}, ${hi}] (first at index ${first}: ${codes[first]})`;
}

/** Both nibbles of every packed byte inside [lo, hi], and the padding nibble zero when the packed axis had odd length. */
export function int4Problems(packed: Int8Array, packedShape: readonly number[], packAxis: number, origLen: number, lo: number, hi: number): string[] {
  const outer = packedShape.slice(0, packAxis).reduce((a, b) => a * b, 1);
  const p = packedShape[packAxis]!;
  const inner = packedShape.slice(packAxis + 1).reduce((a, b) => a * b, 1);
  const padded = origLen % 2 === 1;
  const outside = (v: number) => v < lo || v > hi;
  const bothBad = byteTable((b) => outside(lowNibble(b)) || outside(highNibble(b)));
  // The last packed row of an odd axis holds values in its low nibbles only, zeros above.
  const lowBad = byteTable((b) => outside(lowNibble(b)));
  const paddingBad = byteTable((b) => highNibble(b) !== 0);
  const bytes = asBytes(packed);
  // Every nibble in range (the usual answer, from one SIMD pass): only the padding is left to look at.
  const r = simdByteRanges(bytes);
  const inRange = r !== null && r.min >> 4 >= lo && r.max >> 4 <= hi && r.minLow >= lo && r.maxLow <= hi;
  let bad = 0;
  let firstBad = -1;
  let badPadding = 0;
  let firstPadding = -1;
  for (let o = 0; o < outer; o++) {
    for (let j = inRange ? (padded ? p - 1 : p) : 0; j < p; j++) {
      const lastRow = padded && j === p - 1;
      const base = (o * p + j) * inner;
      const found = countFlagged(bytes, lastRow ? lowBad : bothBad, base, base + inner);
      if (found.count > 0 && bad === 0) firstBad = found.first;
      bad += found.count;
      if (lastRow) {
        const pad = countFlagged(bytes, paddingBad, base, base + inner);
        if (pad.count > 0 && badPadding === 0) firstPadding = pad.first;
        badPadding += pad.count;
      }
    }
  }
  const out: string[] = [];
  if (bad > 0) out.push(`${bad} packed byte(s) hold a nibble outside [${lo}, ${hi}] (first at byte ${firstBad}: 0x${(packed[firstBad]! & 0xff).toString(16).padStart(2, "0")})`);
  if (badPadding > 0) out.push(`${badPadding} padding nibble(s) are not zero (orig_len ${origLen} is odd; first at byte ${firstPadding})`);
  return out;
}

/** NaN codes (and Inf for e5m2): exponent and mantissa bits all set, either sign; `clean` answers from the SIMD byte ranges. */
const FLOAT8_CODES: Readonly<Record<Float8Kind, { bad: Uint8Array; clean: (r: { max7f: number; max7c: number }) => boolean; what: string }>> = {
  float8_e4m3fn: { bad: byteTable((b) => (b & 0x7f) === 0x7f), clean: (r) => r.max7f < 0x7f, what: "NaN" },
  float8_e5m2: { bad: byteTable((b) => (b & 0x7c) === 0x7c), clean: (r) => r.max7c < 0x7c, what: "NaN or Inf" },
};

/** float8 codes of format `kind` that are NaN (or Inf): how many and the first one. */
export function float8Problem(codes: Uint8Array, kind: Float8Kind): string | null {
  const f = FLOAT8_CODES[kind];
  const r = simdByteRanges(codes);
  if (r !== null && f.clean(r)) return null;
  const { count, first } = countFlagged(codes, f.bad);
  return count === 0 ? null : `${count} ${f.what} code(s) (first at index ${first}: 0x${codes[first]!.toString(16)})`;
}

/** Scale values that are not finite and positive (every scale kquant and the references write is): how many and the first one. */
export function scaleProblem(scale: Float32Array): string | null {
  let count = 0;
  let first = -1;
  for (let i = 0; i < scale.length; i++) {
    const s = scale[i]!;
    if (!(s > 0 && s < Infinity)) {
      if (count === 0) first = i;
      count++;
    }
  }
  return count === 0 ? null : `${count} of ${scale.length} scale value(s) are not finite and positive (first at index ${first}: ${scale[first]})`;
}

/** E8M0 scale bytes 0xFF (NaN in OCP MX; compressed-tensors writes it for a group rounded up to ∞): how many and the first one. */
export function e8m0Problem(scales: Uint8Array): string | null {
  const { count, first } = countFlagged(scales, E8M0_NAN);
  return count === 0 ? null : `${count} of ${scales.length} E8M0 scale byte(s) are 0xff (NaN) (first at index ${first})`;
}
const E8M0_NAN = byteTable((b) => b === 0xff);

/**
 * Bits of int32 words packed `bits` per code along rows of `cols` codes (pack_to_int32) that lie
 * past the last code of their row and are not zero: how many words hold such bits, and the first.
 */
export function packedPaddingProblem(words: Int32Array, rows: number, cols: number, bits: number): string | null {
  const per = Math.ceil((cols * bits) / 32);
  const used = cols * bits - (per - 1) * 32; // bits of the last word that hold codes, 1..32
  const mask = used >= 32 ? 0 : ~((1 << used) - 1);
  let count = 0;
  let first = -1;
  for (let r = 0; r < rows; r++) {
    if ((words[r * per + per - 1]! & mask) !== 0) {
      if (count === 0) first = r;
      count++;
    }
  }
  return count === 0 ? null : `${count} row(s) have padding bits set past the last ${bits}-bit code (first in row ${first})`;
}
