import { describe, expect, it } from "vitest";
import { rulesFromFlags } from "../../../src/plan/from-flags.js";
import { buildPlan, type QuantizeStep } from "../../../src/plan/plan.js";
import { newManifest } from "../../../src/pipeline/manifest.js";
import { quantizeTensor } from "../../../src/pipeline/quantize/quantize-tensor.js";
import { dequantizeBytes, dequantizedBlocks, dequantizeRecord } from "../../../src/pipeline/read-back/record-values.js";
import { f32ToBf16Bits, f32ToF16Bits } from "../../../src/quant/convert.js";
import { gaussian } from "../tamper.js";

/** One tensor quantized as `flags` say: its manifest record and stored parts. */
function quantized(shape: number[], flags: Parameters<typeof rulesFromFlags>[0]) {
  const data = gaussian(shape.reduce((a, b) => a * b, 1), 7, 0.1);
  const info = { name: "w", dtype: "F32" as const, shape, file: "x.safetensors", byteLength: data.byteLength, offset: 0 };
  const plan = buildPlan("x.safetensors", [info as never], rulesFromFlags(flags));
  const step = plan.steps[0] as QuantizeStep;
  const rec = newManifest("kquant", "x.safetensors", null, {}, plan.steps).tensors.w!;
  return { rec, parts: quantizeTensor(step, new Uint8Array(data.buffer), "x.safetensors") };
}

describe("dequantizedBlocks", () => {
  const cases: [string, number[], Parameters<typeof rulesFromFlags>[0]][] = [
    ["int8 per row", [40, 12], { mode: "int8" }],
    ["int8 axis 0 (scale over every row)", [40, 12], { mode: "int8", axis: 0 }],
    ["int4 packed along axis 0, odd rows", [43, 12], { mode: "int4", axis: 0 }],
    ["int4 per row", [40, 12], { mode: "int4" }],
    ["grouped int4, partial last group", [42, 12], { mode: "int4", blockSize: 8 }],
    ["float8 per tensor", [40, 12], { mode: "float8" }],
  ];
  for (const [tag, shape, flags] of cases) {
    it(`${tag}: in place into a whole tensor's array, the whole tensor's values`, () => {
      const { rec, parts } = quantized(shape, flags);
      const whole = dequantizeRecord(rec, parts);
      const into = new Float32Array(whole.length).fill(Number.NaN);
      for (const [from, to, values] of dequantizedBlocks(rec, parts, 96, 24, into)) expect(values).toEqual(into.subarray(from, to));
      expect(Buffer.from(into.buffer)).toEqual(Buffer.from(whole.buffer));
    });

    it(`${tag}: blocks in order, cut on the alignment, the whole tensor's values`, () => {
      const { rec, parts } = quantized(shape, flags);
      const whole = dequantizeRecord(rec, parts);
      const joined = new Float32Array(whole.length);
      const starts: number[] = [];
      let next = 0;
      for (const [from, to, values] of dequantizedBlocks(rec, parts, 96, 24)) {
        expect(from).toBe(next);
        starts.push(from);
        joined.set(values, from);
        next = to;
      }
      expect(next).toBe(whole.length);
      expect(starts.length).toBeGreaterThan(1);
      for (const s of starts) expect(s % 24).toBe(0);
      expect(Buffer.from(joined.buffer)).toEqual(Buffer.from(whole.buffer));
    });
  }

  it("a tensor smaller than one block is one block", () => {
    const { rec, parts } = quantized([4, 6], { mode: "int8" });
    expect([...dequantizedBlocks(rec, parts, 96, 24)].map(([a, b]) => [a, b])).toEqual([[0, 24]]);
  });
});

/**
 * The first byte at which two arrays' bytes differ, -1 when equal (lengths included). toEqual on
 * megabyte arrays compares element by element through the matcher and takes minutes on a loaded
 * machine; this takes milliseconds and still names where they part.
 */
function firstDifference(a: ArrayBufferView, b: ArrayBufferView): number {
  const x = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const y = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (x.equals(y)) return -1;
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return i;
  return n;
}

describe("dequantizeBytes", () => {
  // Past one block (2^20 elements), so the output is written block by block.
  const shape = [1030, 1024];
  for (const [tag, flags] of [
    ["int8", { mode: "int8" }],
    ["packed int4 along axis 0", { mode: "int4", axis: 0 }],
    ["grouped int4", { mode: "int4", blockSize: 32 }],
    ["float8", { mode: "float8" }],
  ] as const) {
    it(`${tag}: f32, f16 and bf16 bytes are the whole tensor's values encoded`, () => {
      const { rec, parts } = quantized(shape, flags);
      const whole = dequantizeRecord(rec, parts);
      expect(firstDifference(dequantizeBytes(rec, parts, "f32"), whole)).toBe(-1);
      const f16 = new Uint16Array(whole.length);
      f32ToF16Bits(whole, f16);
      expect(firstDifference(dequantizeBytes(rec, parts, "f16"), f16)).toBe(-1);
      const bf16 = new Uint16Array(whole.length);
      f32ToBf16Bits(whole, bf16);
      const into = new Uint8Array(whole.length * 2 + 8).subarray(8);
      expect(dequantizeBytes(rec, parts, "bf16", into)).toBe(into);
      expect(firstDifference(into, bf16)).toBe(-1);
    });
  }
});
