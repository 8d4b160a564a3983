/**
 * compressed-tensors 0.19.0's pack_to_int32 (compressors/pack_quantized/helpers.py): codes of
 * `bits` ∈ [1, 8] bits, stored as int8 in [-2^(bits-1), 2^(bits-1)), are offset by 2^(bits-1) and
 * packed densely along a row: element i of each run of 32 starts at bit i·bits of the run's
 * `bits` words (little end first; an element may straddle two words), rows padded with zero bits
 * to a multiple of 32 elements and cut to ceil(cols·bits/32) words.
 */

/** Words per packed row of `cols` codes. */
export function packedWords(cols: number, bits: number): number {
  return Math.ceil((cols * bits) / 32);
}

/** Packs `rows` × `cols` int8 codes along dim 1 into rows × ceil(cols·bits/32) int32 words. */
export function packRowsInt32(codes: Int8Array, rows: number, cols: number, bits: number): Int32Array {
  const words = packedWords(cols, bits);
  const out = new Int32Array(rows * words);
  const offset = 1 << (bits - 1);
  const mask = (1 << bits) - 1;
  for (let r = 0; r < rows; r++) {
    const base = r * words;
    for (let c = 0; c < cols; c++) {
      const v = (codes[r * cols + c]! + offset) & mask;
      const bit = c * bits; // runs of 32 elements fill exactly `bits` words, so this is continuous
      const w = bit >>> 5;
      const s = bit & 31;
      out[base + w] |= v << s;
      if (s + bits > 32) out[base + w + 1] |= v >>> (32 - s);
    }
  }
  return out;
}

/** pack_to_int32(..., packed_dim=0): packs along dim 0, giving ceil(rows·bits/32) × cols words. */
export function packColumnsInt32(codes: Int8Array, rows: number, cols: number, bits: number): Int32Array {
  const t = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = codes[r * cols + c]!;
  const packed = packRowsInt32(t, cols, rows, bits); // [cols, words]
  const words = packedWords(rows, bits);
  const out = new Int32Array(words * cols);
  for (let c = 0; c < cols; c++) for (let w = 0; w < words; w++) out[w * cols + c] = packed[c * words + w]!;
  return out;
}
