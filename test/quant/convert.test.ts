import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  f64ToF32,
  fromFloat32,
  roundF32ThroughBits,
  toFloat32,
} from "../../src/quant/convert.js";
import type { Tensor } from "../../src/quant/tensor.js";
import { bytesOf, decodeTensor, loadGolden, type GoldenTensor } from "../support/golden.js";

interface ConvertCase {
  op: string;
  input?: GoldenTensor;
  expected?: GoldenTensor;
  sweep?: string;
  count?: number;
  sha256?: string;
}

const golden = loadGolden<ConvertCase>("convert", "jax");
const explicit = golden.cases.filter((c) => c.input !== undefined);
const sweeps = golden.cases.filter((c) => c.sweep !== undefined);

function sha256(a: ArrayBufferView): string {
  return createHash("sha256")
    .update(Buffer.from(a.buffer, a.byteOffset, a.byteLength))
    .digest("hex");
}

/** Rebuilds the generator's sweep inputs: each finite 16-bit value's float32 bits plus rounding offsets. */
function tieSweep(kind: "float16" | "bfloat16"): Float32Array {
  const top = kind === "float16" ? 0x7c00 : 0x7f80;
  const step = kind === "float16" ? 0x2000 : 0x10000;
  const deltas = [-1, 0, 1, step / 2 - 1, step / 2, step / 2 + 1];
  const codes = new Uint16Array(top);
  for (let h = 0; h < top; h++) codes[h] = h;
  const base = new Float32Array(top);
  if (kind === "float16") f16BitsToF32(codes, base);
  else bf16BitsToF32(codes, base);
  const baseBits = new Uint32Array(base.buffer);
  const half = top * deltas.length;
  const out = new Uint32Array(half * 2);
  for (let h = 0; h < top; h++) {
    for (let d = 0; d < deltas.length; d++) {
      const b = (baseBits[h] + deltas[d]) >>> 0;
      out[h * deltas.length + d] = b;
      out[half + h * deltas.length + d] = (b ^ 0x80000000) >>> 0;
    }
  }
  return new Float32Array(out.buffer);
}

describe("convert: explicit golden vectors (numpy / ml_dtypes astype)", () => {
  it("has every conversion covered", () => {
    expect(explicit.map((c) => c.op).sort()).toEqual([
      "bfloat16_to_float32",
      "float16_to_float32",
      "float32_to_bfloat16",
      "float32_to_float16",
      "float64_to_float32",
    ]);
  });

  for (const c of explicit) {
    it(`${c.op}: ${c.input!.shape[0]} values, raw-buffer form`, () => {
      const input = decodeTensor(c.input!);
      const expected = decodeTensor(c.expected!);
      const n = input.data.length;
      switch (c.op) {
        case "float16_to_float32":
        case "bfloat16_to_float32": {
          const out = new Float32Array(n);
          (c.op === "float16_to_float32" ? f16BitsToF32 : bf16BitsToF32)(input.data as Uint16Array, out);
          expect(bytesOf(out)).toEqual(bytesOf(expected.data));
          break;
        }
        case "float32_to_float16":
        case "float32_to_bfloat16": {
          const out = new Uint16Array(n);
          (c.op === "float32_to_float16" ? f32ToF16Bits : f32ToBf16Bits)(input.data as Float32Array, out);
          expect(bytesOf(out)).toEqual(bytesOf(expected.data));
          break;
        }
        case "float64_to_float32": {
          const out = new Float32Array(n);
          f64ToF32(input.data as Float64Array, out);
          expect(bytesOf(out)).toEqual(bytesOf(expected.data));
          break;
        }
        default:
          throw new Error(`unknown op ${c.op}`);
      }
    });

    it(`${c.op}: tensor form (toFloat32 / fromFloat32) keeps shape and bits`, () => {
      const input = decodeTensor(c.input!);
      const expected = decodeTensor(c.expected!);
      const shaped: Tensor = { ...input, shape: [1, input.data.length] };
      const got = c.op.startsWith("float32_to_")
        ? fromFloat32(shaped as Tensor<Float32Array>, expected.dtype as "float16" | "bfloat16")
        : toFloat32(shaped);
      expect(got.dtype).toBe(expected.dtype);
      expect(got.shape).toEqual([1, input.data.length]);
      expect(bytesOf(got.data)).toEqual(bytesOf(expected.data));
    });
  }
});

describe("convert: exhaustive sweeps (sha256 of numpy's output bytes)", () => {
  for (const c of sweeps) {
    it(`${c.op} ${c.sweep} (${c.count} values)`, () => {
      if (c.op === "float16_to_float32" || c.op === "bfloat16_to_float32") {
        const codes = new Uint16Array(65536);
        for (let h = 0; h < 65536; h++) codes[h] = h;
        const out = new Float32Array(65536);
        (c.op === "float16_to_float32" ? f16BitsToF32 : bf16BitsToF32)(codes, out);
        expect(out.length).toBe(c.count);
        expect(sha256(out)).toBe(c.sha256);
      } else {
        const kind = c.op === "float32_to_float16" ? "float16" : "bfloat16";
        const x = tieSweep(kind);
        expect(x.length).toBe(c.count);
        const out = new Uint16Array(x.length);
        (kind === "float16" ? f32ToF16Bits : f32ToBf16Bits)(x, out);
        expect(sha256(out)).toBe(c.sha256);
      }
    });
  }
});

describe("convert: consistency", () => {
  it("roundF32ThroughBits equals encode-then-decode for the explicit float32 inputs", () => {
    for (const c of explicit.filter((e) => e.op.startsWith("float32_to_"))) {
      const kind = c.op === "float32_to_float16" ? "float16" : "bfloat16";
      const x = decodeTensor(c.input!).data as Float32Array;
      const bits = new Uint16Array(x.length);
      const viaBits = new Float32Array(x.length);
      if (kind === "float16") {
        f32ToF16Bits(x, bits);
        f16BitsToF32(bits, viaBits);
      } else {
        f32ToBf16Bits(x, bits);
        bf16BitsToF32(bits, viaBits);
      }
      const rounded = x.slice();
      roundF32ThroughBits(rounded, kind);
      expect(bytesOf(rounded)).toEqual(bytesOf(viaBits));
    }
  });

  it("rejects mismatched lengths and non-float tensors", () => {
    expect(() => f16BitsToF32(new Uint16Array(3), new Float32Array(2))).toThrow(/3 elements/);
    expect(() => toFloat32({ dtype: "int8", shape: [1], data: new Int8Array(1) })).toThrow(/int8/);
  });
});
