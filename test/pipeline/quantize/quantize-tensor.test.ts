/**
 * quantize-tensor.ts with destination buffers and reused scratch (what the workers do) against
 * the allocating path (what the in-process loop does): the same bytes, and the same NaN/Inf
 * counts whether the kernels count them in their abs-max pass or in a pass of their own.
 */
import { describe, expect, it } from "vitest";
import { byteLengthOf } from "../../../src/formats/dtypes.js";
import type { QuantizeStep } from "../../../src/plan/plan.js";
import { foldAbsMax, quantizeCounted, quantizeWithScale, scaleFromAbsMax, Scratch, sliceAbsMax, type StoredBytes } from "../../../src/pipeline/quantize/quantize-tensor.js";
import { rowRanges, rowSplitOf, slicedRange, sliceStep } from "../../../src/pipeline/quantize/row-split.js";
import { countNonFinite } from "../../../src/quant/finite.js";
import { KERAS_BACKENDS } from "../../../src/quant/backend.js";
import { absMaxQuantizeGroupedWithZeroPoint } from "../../../src/quant/grouped.js";
import { packInt4 } from "../../../src/quant/int4.js";
import { simdActive } from "../../../src/quant/wasm/kernels.js";
import { scalar } from "../../support/simd.js";
import { floatValues } from "../../../src/pipeline/float-values.js";
import { f32ToF16Bits } from "../../../src/quant/convert.js";
import { bytes, gaussian } from "../../support/files.js";
import { QUANT_MODES, stepFor } from "../steps.js";

/** `values` as the source bytes of `dtype` (bfloat16 by truncation, float16 rounded). */
function sourceBytes(values: Float32Array, dtype: "F32" | "BF16" | "F16"): Uint8Array {
  if (dtype === "F32") return bytes(values);
  if (dtype === "F16") {
    const half = new Uint16Array(values.length);
    f32ToF16Bits(values, half);
    return bytes(half);
  }
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  return bytes(Uint16Array.from(bits, (b) => b >>> 16));
}

/**
 * Destinations for every stored tensor in one shared buffer, each starting `skew` bytes past an
 * 8-byte boundary: a skew that is not a multiple of 4 leaves the float32 scale unaligned, so the
 * kernels cannot write it in place and it must be copied.
 */
function destinations(step: QuantizeStep, skew: number): { into: StoredBytes; all: Uint8Array } {
  const lengths = step.stored.map((t) => byteLengthOf(t.dtype, t.shape));
  const starts: number[] = [];
  let offset = 0;
  for (const n of lengths) {
    starts.push(offset + skew);
    offset = Math.ceil((offset + skew + n) / 8) * 8;
  }
  const all = new Uint8Array(new SharedArrayBuffer(offset)).fill(0xee);
  const [values, scale, zero] = starts.map((s, i) => all.subarray(s, s + lengths[i]!));
  return { into: { values: values!, scale: scale!, ...(zero ? { zero } : {}) }, all };
}

describe("quantizing into destination buffers with reused scratch", () => {
  for (const [tag, flags] of QUANT_MODES) {
    for (const dtype of ["F32", "BF16"] as const) {
      it(`${tag}, ${dtype}: the same bytes as the allocating path, in place or copied`, () => {
        const shape = [96, 160];
        const step = stepFor(flags, shape, dtype);
        const scratch = new Scratch();
        // A larger tensor first, so the scratch is longer than the next call needs and stale.
        const big = stepFor(flags, [128, 160], dtype);
        quantizeCounted(big, sourceBytes(gaussian(128 * 160, 7), dtype), { scratch });

        const source = sourceBytes(gaussian(96 * 160, 3), dtype);
        const expected = quantizeCounted(step, source).stored!;
        for (const skew of [0, 1]) {
          const { into } = destinations(step, skew);
          const got = quantizeCounted(step, source, { into, scratch });
          expect(got.bad).toBe(0);
          expect(got.stored!.values).toBe(into.values);
          expect(got.stored!.scale).toBe(into.scale);
          expect(Array.from(into.values)).toEqual(Array.from(expected.values));
          expect(Array.from(into.scale)).toEqual(Array.from(expected.scale));
          expect(into.zero && Array.from(into.zero)).toEqual(expected.zero && Array.from(expected.zero));
        }
      });
    }

    it(`${tag}: counts NaN and Inf as a separate pass would, and returns nothing`, () => {
      const shape = [64, 96];
      const step = stepFor(flags, shape);
      const data = gaussian(64 * 96, 11);
      data[3] = NaN;
      data[64 * 96 - 1] = -Infinity;
      data[40 * 96 + 7] = Infinity;
      data[40 * 96 + 8] = NaN;
      const got = quantizeCounted(step, bytes(data), { into: destinations(step, 0).into, scratch: new Scratch() });
      expect(got.bad).toBe(countNonFinite(data));
      expect(got.bad).toBe(4);
      expect(got.stored).toBeNull();
      // Allowed, the same tensor is quantized and nothing is counted (on jax: tensorflow refuses
      // NaN where it reaches grouped int4's integer cast).
      const onJax = { ...step, spec: { ...step.spec, backend: "jax" as const } };
      const allowed = quantizeCounted(onJax, bytes(data), { allowNonFinite: true });
      expect(allowed.bad).toBe(0);
      expect(allowed.stored).not.toBeNull();
    });
  }
});

describe("two passes over row slices for scales that reduce over every row", () => {
  for (const [tag, flags] of QUANT_MODES) {
    for (const dtype of ["F32", "BF16"] as const) {
      const shape = [37, 50];
      // jax's arithmetic: the NaN and Inf below reach the integer cast, which tensorflow refuses.
      const planned = stepFor(flags, shape, dtype);
      const step = { ...planned, spec: { ...planned.spec, backend: "jax" as const } };
      const split = rowSplitOf(step);
      if (!split?.reduced) continue;
      it(`${tag}, ${dtype}: slices' abs-max, folded, then slice by slice: the one-pass bytes`, () => {
        const data = gaussian(37 * 50, 13);
        data[3] = NaN; // in the first slice; an Inf in the last
        data[36 * 50 + 9] = -Infinity;
        const source = sourceBytes(data, dtype);
        const whole = quantizeCounted(step, source, { allowNonFinite: true }).stored!;
        const slices = rowRanges(split, 8 * split.sourceRowBytes);
        expect(slices.length).toBeGreaterThan(3);
        const part = (from: number, to: number) => source.subarray(from * split.sourceRowBytes, to * split.sourceRowBytes);
        const scratch = new Scratch();
        const passes = slices.map(([from, to]) => sliceAbsMax(sliceStep(step, split, from, to), part(from, to), { allowNonFinite: true, scratch }));
        const amax = passes[0]!.amax.slice();
        for (const p of passes.slice(1)) foldAbsMax(amax, p.amax);
        const scale = scaleFromAbsMax(step, amax);
        expect(Array.from(bytes(scale))).toEqual(Array.from(whole.scale));
        const values = new Uint8Array(whole.values.length).fill(0xee);
        for (const [from, to] of slices) {
          const at = slicedRange(split.stored[0]!, from, to);
          quantizeWithScale(sliceStep(step, split, from, to), part(from, to), scale, { values: values.subarray(at.offset, at.offset + at.length), scratch });
        }
        expect(Array.from(values)).toEqual(Array.from(whole.values));
        // Refused NaN/Inf: the slices' counts add up to the tensor's.
        const counted = slices.map(([from, to]) => sliceAbsMax(sliceStep(step, split, from, to), part(from, to)).bad);
        expect(counted.reduce((a, b) => a + b, 0)).toBe(quantizeCounted(step, source).bad);
      });
    }
  }
});

describe("grouped int4 along the last axis, fused into one pass over the source", () => {
  /** Weights with what the per-group arithmetic must get right: constant groups, zeros, subnormals, wide ranges. */
  function awkward(rows: number, cols: number, seed: number): Float32Array {
    const x = gaussian(rows * cols, seed);
    const bits = new Uint32Array(x.buffer);
    for (let c = 0; c < cols; c++) x[c] = 0.75; // a constant first row
    for (let c = 0; c < Math.min(cols, 40); c++) x[cols + c] = c % 3 === 0 ? -0 : 0;
    for (let i = 2 * cols; i < x.length; i += 17) bits[i] = (i * 2654435761) & 0x807fffff; // subnormals of both signs
    for (let i = 2 * cols + 5; i < x.length; i += 101) x[i] = (i % 2 ? -1 : 1) * 3.0e4;
    return x;
  }
  const cases: [number, number, number][] = [
    [96, 160, 32], // whole groups
    [9, 64, 128], // one group per row, shorter than the block
    [12, 70, 32], // a partial last group, zero-padded
    [5, 33, 8], // an odd row: packed by the general path
    [3, 2, 1], // groups of one
  ];
  for (const dtype of ["F32", "BF16", "F16"] as const) {
    it(`${dtype}: the bytes of the library's grouped quantizer (scalar loops) and pack_int4, on every backend`, () => {
      expect(simdActive()).toBe(true);
      for (const [rows, cols, blockSize] of cases) {
        const source = sourceBytes(awkward(rows, cols, rows * cols), dtype);
        const widened = floatValues(dtype, source)!;
        for (const backend of KERAS_BACKENDS) {
          const planned = stepFor({ mode: "int4", blockSize }, [rows, cols], dtype);
          const step = { ...planned, spec: { ...planned.spec, backend } };
          const got = quantizeCounted(step, source).stored!;
          const want = scalar(() => absMaxQuantizeGroupedWithZeroPoint({ dtype: "float32", shape: [rows, cols], data: widened }, blockSize, { axis: 1, backend }));
          const packed = scalar(() => packInt4(want.values, 1).packed.data);
          const at = `${rows}×${cols} block ${blockSize} on ${backend}`;
          expect(Array.from(got.values), at).toEqual(Array.from(bytes(packed)));
          expect(Array.from(got.scale), at).toEqual(Array.from(bytes(want.scale.data)));
          expect(Array.from(got.zero!), at).toEqual(Array.from(bytes(want.zeroPoint.data)));
        }
      }
    });
  }

  it("NaN and Inf: counted and refused, or (allowed) the library's bytes", () => {
    const [rows, cols, blockSize] = [16, 64, 32];
    const data = awkward(rows, cols, 5);
    data[70] = NaN;
    data[200] = Infinity;
    const step = stepFor({ mode: "int4", blockSize }, [rows, cols]);
    const refused = quantizeCounted(step, bytes(data));
    expect(refused.stored).toBeNull();
    expect(refused.bad).toBe(2);
    for (const backend of ["jax", "torch"] as const) {
      const allowed = quantizeCounted({ ...step, spec: { ...step.spec, backend } }, bytes(data), { allowNonFinite: true }).stored!;
      const want = absMaxQuantizeGroupedWithZeroPoint({ dtype: "float32", shape: [rows, cols], data }, blockSize, { axis: 1, backend });
      expect(Array.from(allowed.values)).toEqual(Array.from(bytes(packInt4(want.values, 1).packed.data)));
      expect(Array.from(allowed.scale)).toEqual(Array.from(bytes(want.scale.data)));
    }
  });
});
