import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FLOAT8_MAX, decodeFloat8, encodeFloat8, type Float8Kind } from "../../src/quant/float8.js";
import { bytesOf, decodeTensor, loadGolden, type GoldenTensor } from "../support/golden.js";

interface Float8Case {
  op: "decode" | "encode" | "max";
  kind: Float8Kind;
  input?: GoldenTensor;
  expected?: GoldenTensor | number;
  sweep?: string;
  stride?: number;
  count?: number;
  sha256?: string;
}

const golden = loadGolden<Float8Case>("float8");

describe("float8: golden vectors from jax astype (asserted equal to ml_dtypes)", () => {
  it("covers both kinds for decode, encode, sweep and max", () => {
    const tags = golden.cases.map((c) => `${c.op}:${c.kind}:${c.sweep ?? ""}`).sort();
    expect(tags).toEqual([
      "decode:float8_e4m3fn:",
      "decode:float8_e5m2:",
      "encode:float8_e4m3fn:",
      "encode:float8_e4m3fn:float32_bits_stride",
      "encode:float8_e5m2:",
      "encode:float8_e5m2:float32_bits_stride",
      "max:float8_e4m3fn:",
      "max:float8_e5m2:",
    ]);
  });

  for (const c of golden.cases) {
    if (c.op === "max") {
      it(`FLOAT8_MAX.${c.kind} is ml_dtypes.finfo max`, () => {
        expect(FLOAT8_MAX[c.kind]).toBe(c.expected);
      });
    } else if (c.op === "decode") {
      it(`decodes all 256 ${c.kind} codes`, () => {
        const codes = decodeTensor(c.input!).data as Uint8Array;
        const out = new Float32Array(codes.length);
        decodeFloat8(codes, out, c.kind);
        expect(codes.length).toBe(256);
        expect(bytesOf(out)).toEqual(bytesOf(decodeTensor(c.expected as GoldenTensor).data));
      });
    } else if (c.sweep === undefined) {
      it(`encodes ${c.input!.shape[0]} float32 values to ${c.kind} (ties, boundaries, subnormals, overflow, NaN)`, () => {
        const x = decodeTensor(c.input!).data as Float32Array;
        const out = new Uint8Array(x.length);
        encodeFloat8(x, out, c.kind);
        expect(bytesOf(out)).toEqual(bytesOf(decodeTensor(c.expected as GoldenTensor).data));
      });
    } else {
      it(`encodes a stride-${c.stride} sweep of all float32 bit patterns to ${c.kind}`, () => {
        const bits = new Uint32Array(c.count!);
        for (let i = 0; i < bits.length; i++) bits[i] = i * c.stride!;
        const out = new Uint8Array(bits.length);
        encodeFloat8(new Float32Array(bits.buffer), out, c.kind);
        expect(bits[bits.length - 1]! + c.stride!).toBeGreaterThan(0xffffffff);
        expect(createHash("sha256").update(out).digest("hex")).toBe(c.sha256);
      });
    }
  }

  it("decode then encode is the identity on every non-NaN code (and NaN codes stay NaN)", () => {
    for (const kind of ["float8_e4m3fn", "float8_e5m2"] as const) {
      const codes = new Uint8Array(256).map((_, i) => i);
      const values = new Float32Array(256);
      decodeFloat8(codes, values, kind);
      const back = new Uint8Array(256);
      encodeFloat8(values, back, kind);
      for (let c = 0; c < 256; c++) {
        if (Number.isNaN(values[c])) expect(Number.isNaN(values[back[c]!]!)).toBe(true);
        else expect(back[c]).toBe(c);
      }
    }
  });

  it("rejects mismatched lengths and unknown kinds", () => {
    expect(() => encodeFloat8(new Float32Array(2), new Uint8Array(3), "float8_e5m2")).toThrow(/2 elements/);
    expect(() => encodeFloat8(new Float32Array(1), new Uint8Array(1), "float8_e4m3" as Float8Kind)).toThrow(
      /unknown kind/,
    );
  });
});
