import { describe, expect, it } from "vitest";
import { lcg, scalar } from "../support/simd.js";
import { dequantizeDivide, dequantizeMultiply, dequantizeZeroPoint, scaleLayout } from "../../src/quant/dequantize.js";
import { ErrorAccumulator, ERROR_BLOCK } from "../../src/quant/error-metrics.js";
import { simdByteRanges, simdDequantizeRowGroups } from "../../src/quant/wasm/read-back-kernels.js";
import { packInt4, unpackInt4 } from "../../src/quant/int4.js";

/** The first element whose bits differ, or -1 (deep-comparing megabytes is slow). */
function firstDifference(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (x.length !== y.length) return Math.min(x.length, y.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** Codes over the whole int8 range, in an offset view of a larger buffer. */
function codes(n: number, seed: number): Int8Array {
  const r = lcg(seed);
  const q = new Int8Array(n + 3).subarray(3);
  for (let i = 0; i < n; i++) q[i] = Math.floor(r() * 256) - 128;
  return q;
}

/** Scales from tiny (products flush to signed zeros) to large. */
function scales(n: number, seed: number): Float32Array {
  const r = lcg(seed);
  return Float32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 2 ** -140 : i % 7 === 0 ? 3e30 : 0.001 + r()));
}

describe("dequantize kernels: the bits of the scalar loops", () => {
  // Odd sizes: windows end mid-run, runs end mid-vector.
  for (const [rows, cols] of [[37, 1027], [300, 333], [1, 70001]] as const) {
    const n = rows * cols;
    const q = codes(n, rows);

    it(`int8 ${rows}×${cols}, a scale per row and per column (multiplied by reciprocals)`, () => {
      for (const scaleShape of [[rows, 1], [1, cols]]) {
        const s = scales(scaleShape[0]! * scaleShape[1]!, cols);
        const layout = scaleLayout([rows, cols], scaleShape);
        const simd = new Float32Array(n);
        dequantizeDivide(q, s, layout, simd);
        const ref = scalar(() => {
          const out = new Float32Array(n);
          dequantizeDivide(q, s, layout, out);
          return out;
        });
        expect(firstDifference(simd, ref)).toBe(-1);
      }
    });

    it(`grouped ${rows}×${cols}: groups along either axis, a partial last group, signed zeros`, () => {
      for (const axis of [0, 1]) {
        const block = 32;
        const groups = Math.ceil((axis === 0 ? rows : cols) / block);
        const scaleShape = axis === 0 ? [groups, cols] : [rows, groups];
        const s = scales(scaleShape[0]! * scaleShape[1]!, 3);
        const r = lcg(9);
        const zero = Int8Array.from({ length: s.length }, () => Math.floor(r() * 16) - 8);
        const layout = scaleLayout([rows, cols], scaleShape, { axis, blockSize: block });
        const simd = new Float32Array(n);
        dequantizeZeroPoint(q, s, zero, layout, simd);
        const ref = scalar(() => {
          const out = new Float32Array(n);
          dequantizeZeroPoint(q, s, zero, layout, out);
          return out;
        });
        expect(firstDifference(simd, ref)).toBe(-1);
        expect(simd.some((v) => Object.is(v, -0))).toBe(true);
      }
    });

    it(`float32 × scale ${rows}×${cols} (decoded float8), per tensor and per row`, () => {
      const r = lcg(5);
      const x = Float32Array.from({ length: n }, () => (r() - 0.5) * 448);
      for (const scaleShape of [[], [rows, 1]]) {
        const s = scales(Math.max(1, scaleShape.reduce((a, b) => a * b, 1)), 11);
        const layout = scaleLayout([rows, cols], scaleShape);
        const simd = new Float32Array(n);
        dequantizeMultiply(x, s, layout, simd);
        const ref = scalar(() => {
          const out = new Float32Array(n);
          dequantizeMultiply(x, s, layout, out);
          return out;
        });
        expect(firstDifference(simd, ref)).toBe(-1);
      }
    });
  }

  // Even rows (packed pairs), blocks that divide a row or leave a partial last group (odd too),
  // groups longer than a row, rows that fill a window exactly or leave a remainder.
  for (const [rows, cols, block] of [[37, 1026, 32], [300, 334, 7], [5, 65536, 128], [70, 4096, 32], [3, 2, 1], [9, 10, 64]] as const) {
    it(`grouped along packed rows ${rows}×${cols} block ${block}: unpacked and dequantized in the kernels, the scalar bits`, () => {
      const n = rows * cols;
      const r = lcg(rows + cols);
      const q = Int8Array.from({ length: n }, () => Math.floor(r() * 16) - 8);
      const packed = packInt4({ dtype: "int8", shape: [rows, cols], data: q }, 1).packed.data as Int8Array;
      const groups = Math.ceil(cols / block);
      const s = scales(rows * groups, block);
      const zero = Int8Array.from({ length: s.length }, () => Math.floor(r() * 16) - 8);
      const got = new Float32Array(n).fill(NaN);
      const bytes = new Uint8Array(packed.buffer, packed.byteOffset, packed.length);
      expect(simdDequantizeRowGroups(bytes, s, zero, rows, cols, block, got)).toBe(true);
      const ref = scalar(() => {
        const unpacked = unpackInt4({ dtype: "int8", shape: [rows, cols / 2], data: packed }, cols, 1, "int8").data as Int8Array;
        const out = new Float32Array(n);
        dequantizeZeroPoint(unpacked, s, zero, scaleLayout([rows, cols], [rows, groups], { axis: 1, blockSize: block }), out);
        return out;
      });
      expect(firstDifference(got, ref)).toBe(-1);
      expect(got.some((v) => Object.is(v, -0))).toBe(true);
    });
  }

  it("grouped along packed rows: odd rows and non-finite scales are left to the general path", () => {
    const s = new Float32Array([1, 2, 3]);
    const z = new Int8Array(3);
    expect(simdDequantizeRowGroups(new Uint8Array(6), s, z, 3, 3, 4, new Float32Array(9))).toBe(false);
    s[1] = Infinity;
    expect(simdDequantizeRowGroups(new Uint8Array(3), s, z, 3, 2, 4, new Float32Array(6))).toBe(false);
  });

  it("NaN and infinite factors or values stay with the scalar loops (their NaN bits are the engine's)", () => {
    const q = codes(4096, 1);
    const s = scales(64, 2);
    s[3] = Number.NaN;
    s[4] = 0; // its reciprocal is Inf: 0 × Inf is NaN
    const layout = scaleLayout([64, 64], [64, 1]);
    const simd = new Float32Array(4096);
    dequantizeDivide(q, s, layout, simd);
    const ref = scalar(() => {
      const out = new Float32Array(4096);
      dequantizeDivide(q, s, layout, out);
      return out;
    });
    expect(firstDifference(simd, ref)).toBe(-1);
  });
});

describe("error sums", () => {
  const n = 3 * ERROR_BLOCK + 1234;
  const r = lcg(42);
  const reference = Float32Array.from({ length: n }, () => (r() - 0.5) * 2);
  const approx = reference.map((v, i) => (i % 3 === 0 ? v : Math.fround(v + (r() - 0.5) * 1e-3)));

  it("agree with the scalar sums to rounding, max error and count exactly", () => {
    const simd = new ErrorAccumulator();
    simd.add(reference, approx);
    const ref = scalar(() => {
      const acc = new ErrorAccumulator();
      acc.add(reference, approx);
      return acc.result();
    });
    const m = simd.result();
    expect(m.count).toBe(ref.count);
    expect(m.maxAbsError).toBe(ref.maxAbsError);
    expect(m.sqnrDb).toBeCloseTo(ref.sqnrDb, 9);
    expect(m.cosine).toBeCloseTo(ref.cosine, 12);
    expect(m.rmse / ref.rmse).toBeCloseTo(1, 12);
  });

  it("are the same bits whether fed whole or in aligned blocks", () => {
    const whole = new ErrorAccumulator();
    whole.add(reference, approx);
    const blocks = new ErrorAccumulator();
    for (let s = 0; s < n; s += 2 * ERROR_BLOCK) blocks.add(reference.subarray(s, s + 2 * ERROR_BLOCK), approx.subarray(s, s + 2 * ERROR_BLOCK));
    expect(blocks.result()).toEqual(whole.result());
  });

  it("a block with a non-finite pair is summed by the loop, which counts agreeing and mismatched pairs", () => {
    const a = approx.slice();
    const b = reference.slice();
    a[ERROR_BLOCK + 5] = Number.NaN;
    b[ERROR_BLOCK + 5] = Number.NaN;
    a[2 * ERROR_BLOCK + 7] = Number.POSITIVE_INFINITY;
    const simd = new ErrorAccumulator();
    simd.add(b, a);
    const m = simd.result();
    const ref = scalar(() => {
      const acc = new ErrorAccumulator();
      acc.add(b, a);
      return acc.result();
    });
    expect(m.nonFiniteAgreeing).toBe(1);
    expect(m.nonFiniteMismatches).toBe(1);
    expect(m.maxAbsError).toBe(Infinity);
    expect(m.count).toBe(ref.count);
    expect(m.sqnrDb).toBeCloseTo(ref.sqnrDb, 9);
  });
});

describe("byte ranges (verify's content checks)", () => {
  it("are the bytes' own ranges, over windows and an odd tail (whose zero padding counts too)", () => {
    const r = lcg(3);
    for (const n of [1, 17, 65536 + 1001]) {
      // Mostly a narrow range, so extremes come from a few planted bytes.
      const bytes = Uint8Array.from({ length: n }, () => Math.floor(r() * 8));
      if (n > 17) {
        bytes[n - 1] = 0x80; // -128, its low nibble 0
        bytes[70000] = 0x7f; // 127: low nibble 7 (-1 + 8), & 0x7f = 0x7f
        bytes[5] = 0x7c; // e5m2's Inf bits, low nibble -4
      }
      const got = simdByteRanges(bytes)!;
      // The last window is padded with zeros to whole vectors: 0 is in every range a check asks about.
      const all = n % 16 === 0 ? bytes : Uint8Array.from([...bytes, 0]);
      const s8 = Array.from(all, (b) => (b << 24) >> 24);
      const low = Array.from(all, (b) => ((b & 0x0f) ^ 8) - 8);
      expect(got).toEqual({
        min: Math.min(...s8),
        max: Math.max(...s8),
        minLow: Math.min(...low),
        maxLow: Math.max(...low),
        max7f: Math.max(...Array.from(all, (b) => b & 0x7f)),
        max7c: Math.max(...Array.from(all, (b) => b & 0x7c)),
      });
    }
  });
});
