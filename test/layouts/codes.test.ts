import { describe, expect, it } from "vitest";
import { offsetCodes, packRows, transposeCodes, transposeWords, unpackRows, unsignedCodes, wordsPerRow } from "../../src/layouts/codes.js";

const words = (bytes: Uint8Array) => Array.from(new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));

describe("codes: kquant's stored bytes as the unsigned words MLX and compressed-tensors pack", () => {
  it("packs 4-bit codes eight to a word, the first in the lowest nibble (what mlx.core.quantize wrote for u = 0,0,1,1,2,2,3,3)", () => {
    const u = Uint8Array.from([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(words(packRows({ rows: 1, cols: 8, u }, 4))).toEqual([0x33221100]);
  });

  it("packs 8-bit codes four to a word and pads a row's last word with zero bits", () => {
    const u = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(words(packRows({ rows: 2, cols: 6, u }, 8))).toEqual([0x04030201, 0x0605, 0x0a090807, 0x0c0b]);
    expect(wordsPerRow(37, 4)).toBe(5);
  });

  it("unpacks what it packs, odd row lengths included", () => {
    for (const [rows, cols, bits] of [[3, 37, 4], [5, 9, 8], [1, 1, 4]] as const) {
      const u = Uint8Array.from({ length: rows * cols }, (_, i) => (i * 7 + 3) % (1 << bits));
      expect(unpackRows(packRows({ rows, cols, u }, bits), rows, cols, bits).u).toEqual(u);
    }
  });

  it("reads kquant's int4 bytes (low nibble first, odd rows padded) as q + 8, and int8 as q + 128", () => {
    // Row of 3 codes q = -8, 7, -1: bytes 0x78 (q0 = -8 low, q1 = 7 high), 0x0f (q2 = -1, pad 0).
    const packed = Uint8Array.from([0x78, 0x0f]);
    expect(Array.from(unsignedCodes(packed, 1, 3, 4).u)).toEqual([0, 15, 7]);
    expect(Array.from(unsignedCodes(Uint8Array.from([0x81, 0x00, 0x7f]), 1, 3, 8).u)).toEqual([1, 128, 255]);
    expect(Array.from(offsetCodes(Uint8Array.from([0xf8, 0x07]), 1, 2, 4).u)).toEqual([0, 15]);
  });

  it("transposes codes and words", () => {
    const c = { rows: 2, cols: 3, u: Uint8Array.from([1, 2, 3, 4, 5, 6]) };
    expect(Array.from(transposeCodes(c).u)).toEqual([1, 4, 2, 5, 3, 6]);
    const w = new Uint8Array(Uint32Array.from([1, 2, 3, 4, 5, 6]).buffer);
    expect(words(transposeWords(w, 2, 3))).toEqual([1, 4, 2, 5, 3, 6]);
  });
});
