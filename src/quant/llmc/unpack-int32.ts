/**
 * compressed-tensors 0.19.0's unpack_from_int32 (compressors/pack_quantized/helpers.py), the
 * inverse of pack-int32.ts: element i of each run of 32 is read from bit i·bits of the run's
 * `bits` words (little end first, straddling two words where it must), words past the stored ones
 * read as zero, and the code is that field minus 2^(bits-1), as int8.
 */
import { packedWords } from "./pack-int32.js";

/** Unpacks rows × ceil(cols·bits/32) int32 words (packed along dim 1) into rows × cols int8 codes. */
export function unpackRowsInt32(words: Int32Array, rows: number, cols: number, bits: number): Int8Array {
  const per = packedWords(cols, bits);
  const out = new Int8Array(rows * cols);
  const offset = 1 << (bits - 1);
  const mask = (1 << bits) - 1;
  for (let r = 0; r < rows; r++) {
    const base = r * per;
    for (let c = 0; c < cols; c++) {
      const bit = c * bits;
      const w = bit >>> 5;
      const s = bit & 31;
      let v = words[base + w]! >>> s;
      if (s + bits > 32 && w + 1 < per) v |= words[base + w + 1]! << (32 - s);
      out[r * cols + c] = (v & mask) - offset;
    }
  }
  return out;
}

/** unpack_from_int32(..., packed_dim=0): ceil(rows·bits/32) × cols words back to rows × cols int8 codes. */
export function unpackColumnsInt32(words: Int32Array, rows: number, cols: number, bits: number): Int8Array {
  const per = packedWords(rows, bits);
  const t = new Int32Array(cols * per);
  for (let w = 0; w < per; w++) for (let c = 0; c < cols; c++) t[c * per + w] = words[w * cols + c]!;
  const byColumn = unpackRowsInt32(t, cols, rows, bits); // [cols, rows]
  const out = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = byColumn[c * rows + r]!;
  return out;
}
