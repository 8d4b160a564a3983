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
import { bytes, gaussian } from "../../support/files.js";
import { QUANT_MODES, stepFor } from "../steps.js";


/** `values` as the source bytes of `dtype` (bfloat16 by truncation). */
function sourceBytes(values: Float32Array, dtype: "F32" | "BF16"): Uint8Array {
  if (dtype === "F32") return bytes(values);
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

