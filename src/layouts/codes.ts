/**
 * Integer codes between kquant's stored bytes and the unsigned words other runtimes pack
 * (compressed-tensors' `pack_to_int32`, MLX's `quantize`): both put element j of a row at bit
 * `j·bits` of the row's little-endian bit string, i.e. 32/bits elements per 32-bit word, the
 * first element in the lowest bits, and pad a row's last word with zero bits. Codes are stored
 * offset by 2^(bits-1): a signed q in [-2^(bits-1), 2^(bits-1)) is the unsigned u = q + 2^(bits-1).
 * No scales here: only the bit layouts.
 */

/** A [rows, cols] matrix of small unsigned codes (one byte each), row major. */
export interface Codes {
  rows: number;
  cols: number;
  /** rows·cols codes, each < 2^bits. */
  u: Uint8Array;
}

/**
 * kquant's signed codes as unsigned ones (q + 2^(bits-1)), for a [rows, cols] tensor whose values
 * kquant stored as I8 (bits 8) or as int4 packed along the last axis (bits 4: byte c/2 of a row,
 * even c in the low nibble, an odd row length padded).
 */
export function unsignedCodes(values: Uint8Array, rows: number, cols: number, bits: 4 | 8): Codes {
  const u = new Uint8Array(rows * cols);
  if (bits === 8) {
    for (let i = 0; i < u.length; i++) u[i] = values[i]! ^ 0x80;
    return { rows, cols, u };
  }
  const rowBytes = Math.ceil(cols / 2);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const b = values[r * rowBytes + (c >> 1)]!;
      u[r * cols + c] = ((c & 1) === 0 ? b & 0x0f : b >> 4) ^ 8;
    }
  }
  return { rows, cols, u };
}

/** Signed codes (int8, e.g. kquant's zero points) as unsigned ones of `bits` bits. */
export function offsetCodes(signed: Uint8Array, rows: number, cols: number, bits: 4 | 8): Codes {
  const u = new Uint8Array(rows * cols);
  const offset = 1 << (bits - 1);
  for (let i = 0; i < u.length; i++) u[i] = ((signed[i]! << 24) >> 24) + offset;
  return { rows, cols, u };
}

/** Words per packed row. */
export function wordsPerRow(cols: number, bits: 4 | 8): number {
  return Math.ceil((cols * bits) / 32);
}

/** Each row's codes packed into 32-bit little-endian words: [rows, wordsPerRow(cols)] as bytes. */
export function packRows(c: Codes, bits: 4 | 8): Uint8Array {
  const rowBytes = wordsPerRow(c.cols, bits) * 4;
  const out = new Uint8Array(c.rows * rowBytes);
  for (let r = 0; r < c.rows; r++) {
    const src = r * c.cols;
    const dst = r * rowBytes;
    if (bits === 8) {
      out.set(c.u.subarray(src, src + c.cols), dst);
      continue;
    }
    for (let j = 0; j < c.cols; j++) out[dst + (j >> 1)]! |= c.u[src + j]! << ((j & 1) * 4);
  }
  return out;
}

/** The inverse of packRows: the codes of a [rows, cols] matrix from its packed words. */
export function unpackRows(bytes: Uint8Array, rows: number, cols: number, bits: 4 | 8): Codes {
  const rowBytes = wordsPerRow(cols, bits) * 4;
  const u = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      u[r * cols + j] = bits === 8 ? bytes[r * rowBytes + j]! : (bytes[r * rowBytes + (j >> 1)]! >> ((j & 1) * 4)) & 0x0f;
    }
  }
  return { rows, cols, u };
}

/** The transpose of a code matrix (compressed-tensors packs zero points along dim 0 by packing the transpose). */
export function transposeCodes(c: Codes): Codes {
  const u = new Uint8Array(c.u.length);
  for (let r = 0; r < c.rows; r++) for (let j = 0; j < c.cols; j++) u[j * c.rows + r] = c.u[r * c.cols + j]!;
  return { rows: c.cols, cols: c.rows, u };
}

/** Little-endian words of a [rows, cols] int32 matrix, transposed (for packing along dim 0). */
export function transposeWords(bytes: Uint8Array, rows: number, cols: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) out.set(bytes.subarray((r * cols + j) * 4, (r * cols + j) * 4 + 4), (j * rows + r) * 4);
  }
  return out;
}
