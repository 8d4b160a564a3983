import { createHash } from "node:crypto";
import { absMaxAlong } from "../../src/quant/absmax-along.js";
import { normalizeAxes } from "../../src/quant/axes.js";
import { broadcastLayout } from "../../src/quant/broadcast.js";
import type { Tensor } from "../../src/quant/tensor.js";
import { useSimd } from "../../src/quant/wasm/kernels.js";
import { describe, expect, it } from "vitest";
import { FLOAT8_MAX, decodeFloat8, encodeFloat8, type Float8Kind } from "../../src/quant/float8.js";
import {
  computeFloat8AmaxHistory,
  computeFloat8Scale,
  quantizeAndDequantize,
  quantizeFloat8,
  type ComputeDType,
} from "../../src/quant/float8-scale.js";
import { behaviourOf } from "../../src/quant/backend.js";
import { KERAS_BACKENDS, bytesOf, decodeTensor, loadGolden, nanBlind, refused, type GoldenTensor } from "../support/golden.js";

interface QdqResult {
  scale: GoldenTensor;
  expected: GoldenTensor;
  codes: GoldenTensor;
}

interface Float8Case {
  op: "decode" | "encode" | "max" | "compute_scale" | "amax_history" | "qdq" | "cli";
  axis?: number | null;
  codes?: GoldenTensor;
  note?: string;
  amax?: GoldenTensor;
  scale?: GoldenTensor;
  dtype_max?: number;
  margin?: number;
  x?: GoldenTensor;
  history?: GoldenTensor;
  compute?: ComputeDType;
  results?: QdqResult[];
  kind: Float8Kind;
  input?: GoldenTensor;
  expected?: GoldenTensor | number;
  sweep?: string;
  stride?: number;
  count?: number;
  sha256?: string;
}

const golden = loadGolden<Float8Case>("float8", "jax");

const codec = golden.cases.filter((c) => c.op === "decode" || c.op === "encode" || c.op === "max");

describe("float8: golden vectors from each backend's keras.ops.cast", () => {
  it("covers both kinds for decode, encode, sweep and max", () => {
    const tags = codec.map((c) => `${c.op}:${c.kind}:${c.sweep ?? ""}`).sort();
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

  for (const backend of KERAS_BACKENDS) for (const c of loadGolden<Float8Case>("float8", backend).cases.filter((k) => k.op === "decode" || k.op === "encode" || k.op === "max")) {
    const cast = behaviourOf(backend).float8Cast;
    if (c.op === "max") {
      it(`${backend}: FLOAT8_MAX.${c.kind} is ml_dtypes.finfo max`, () => {
        expect(FLOAT8_MAX[c.kind]).toBe(c.expected);
      });
    } else if (c.op === "decode") {
      it(`${backend}: decodes all 256 ${c.kind} codes`, () => {
        const codes = decodeTensor(c.input!).data as Uint8Array;
        const out = new Float32Array(codes.length);
        decodeFloat8(codes, out, c.kind, cast);
        expect(codes.length).toBe(256);
        expect(bytesOf(out)).toEqual(bytesOf(decodeTensor(c.expected as GoldenTensor).data));
      });
    } else if (c.sweep === undefined) {
      it(`${backend}: encodes ${c.input!.shape[0]} float32 values to ${c.kind} (ties, boundaries, subnormals, overflow, NaN)`, () => {
        const x = decodeTensor(c.input!).data as Float32Array;
        const out = new Uint8Array(x.length);
        encodeFloat8(x, out, c.kind, cast);
        expect(bytesOf(out)).toEqual(bytesOf(decodeTensor(c.expected as GoldenTensor).data));
      });
    } else {
      it(`${backend}: encodes a stride-${c.stride} sweep of all float32 bit patterns to ${c.kind}`, () => {
        const bits = new Uint32Array(c.count!);
        for (let i = 0; i < bits.length; i++) bits[i] = i * c.stride!;
        const out = new Uint8Array(bits.length);
        encodeFloat8(new Float32Array(bits.buffer), out, c.kind, cast);
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

for (const backend of KERAS_BACKENDS) {
  const golden = loadGolden<Float8Case>("float8", backend);
describe(`compute_float8_scale (golden from Keras on ${backend}, backend tensors in)`, () => {
  const cases = golden.cases.filter((c) => c.op === "compute_scale");
  it("covers margins 0/1/3/-2/0.5/20/30 for both maxima, scalars and a broadcast", () => {
    expect(new Set(cases.map((c) => c.margin))).toEqual(new Set([0, 1, 3, -2, 0.5, 20, 30]));
    expect(new Set(cases.map((c) => c.dtype_max))).toEqual(new Set([448, 57344]));
    expect(cases.some((c) => c.amax!.shape.length === 0 && c.scale!.shape.length === 0)).toBe(true);
    expect(cases.some((c) => c.amax!.shape.length === 1 && c.scale!.shape.length === 0)).toBe(true);
  });
  for (const c of cases) {
    it(`dtype_max ${c.dtype_max}, margin ${c.margin}, amax ${JSON.stringify(c.amax!.shape)}`, () => {
      const expected = decodeTensor(c.expected as GoldenTensor);
      const got = computeFloat8Scale(decodeTensor(c.amax!), decodeTensor(c.scale!), c.dtype_max!, c.margin, backend);
      expect(got.shape).toEqual(expected.shape);
      expect(bytesOf(got.data)).toEqual(bytesOf(expected.data));
    });
  }
  it("takes plain numbers as float32 scalars", () => {
    const c = cases.find((k) => k.amax!.shape.length === 0 && k.scale!.shape.length === 0)!;
    const amax = (decodeTensor(c.amax!).data as Float32Array)[0]!;
    const scale = (decodeTensor(c.scale!).data as Float32Array)[0]!;
    const got = computeFloat8Scale(amax, scale, c.dtype_max!, c.margin, backend);
    expect(bytesOf(got.data)).toEqual(bytesOf(decodeTensor(c.expected as GoldenTensor).data));
  });
  it("refuses margins whose 2**margin overflows Keras's int32", () => {
    expect(() => computeFloat8Scale(1, 1, 448, 31)).toThrow(/margin 31/);
  });
});

describe(`compute_float8_amax_history (golden from Keras on ${backend})`, () => {
  for (const c of golden.cases.filter((k) => k.op === "amax_history")) {
    it(c.note!, () => {
      if (refused(c.expected)) {
        // tensorflow's scatter_update refuses a history of rank > 1; kquant takes it as the others do.
        expect(c.history!.shape.length).toBeGreaterThan(1);
        return;
      }
      const expected = decodeTensor(c.expected as GoldenTensor);
      const got = computeFloat8AmaxHistory(decodeTensor(c.x!), decodeTensor(c.history!), backend);
      expect(got.shape).toEqual(expected.shape);
      expect(bytesOf(got.data)).toEqual(bytesOf(expected.data));
    });
  }
  it("rejects an empty x and a scalar history", () => {
    const h = { dtype: "float32" as const, shape: [2], data: new Float32Array(2) };
    expect(() => computeFloat8AmaxHistory({ dtype: "float32", shape: [0], data: new Float32Array(0) }, h)).toThrow(
      /empty/,
    );
    expect(() =>
      computeFloat8AmaxHistory(h, { dtype: "float32", shape: [], data: new Float32Array(1) }),
    ).toThrow(/rank >= 1/);
  });
});

describe(`quantize_and_dequantize and quantizeFloat8 (golden from Keras on ${backend})`, () => {
  const cases = golden.cases.filter((c) => c.op === "qdq");
  it("covers both kinds, three compute dtypes, mixed input dtypes and per-channel scales", () => {
    expect(new Set(cases.map((c) => `${c.kind}/${c.compute}`)).size).toBe(6);
    expect(cases.some((c) => c.x!.dtype === "float16" && c.compute === "float16")).toBe(true);
    expect(cases.some((c) => c.x!.dtype === "float32" && c.compute === "bfloat16")).toBe(true);
    expect(cases.some((c) => c.results![0]!.scale.shape.length === 3)).toBe(true);
  });
  for (const c of cases) {
    for (const r of c.results!) {
      const label = `${c.kind} ${c.compute}: ${c.note} (x ${c.x!.dtype}${JSON.stringify(c.x!.shape)}, scale ${JSON.stringify(r.scale.shape)} ${(decodeTensor(r.scale).data as Float32Array)[0]})`;
      it(label, () => {
        const x = decodeTensor(c.x!);
        const scale = decodeTensor(r.scale);
        if (refused(r.expected)) {
          // tensorflow refuses to clip float32 inputs with a 16-bit bound (no implicit promotion).
          expect([backend, x.dtype, c.compute === "float32"]).toEqual(["tensorflow", "float32", false]);
          return;
        }
        const expected = decodeTensor(r.expected);
        const got = quantizeAndDequantize(x, scale, c.kind, c.compute!, backend);
        expect(got.dtype).toBe(expected.dtype);
        expect(got.shape).toEqual(expected.shape);
        if (backend === "torch" || backend === "tensorflow") {
          // Which NaN (sign, payload) a product or quotient of NaNs keeps differs there between
          // their vectorised body and scalar tail; every other bit is exact.
          expect(nanBlind(got)).toEqual(nanBlind(expected));
        } else {
          expect(bytesOf(got.data)).toEqual(bytesOf(expected.data));
        }
      });
      if (c.compute === "float32" && c.x!.dtype === "float32") {
        it(`quantizeFloat8 codes: ${label}`, () => {
          const x = decodeTensor(c.x!).data as Float32Array;
          const scale = decodeTensor(r.scale);
          const codes = new Uint8Array(x.length);
          const s = scale.data as Float32Array;
          // A trailing (C,) or (C,1) layout is what the CLI passes; other layouts go through the tensor API.
          const trailing = scale.shape.length <= 1 || (scale.shape.length === 2 && scale.shape[1] === 1);
          if (!trailing) return expect(scale.shape.length).toBeGreaterThan(1);
          const inner = scale.shape.length === 2 ? c.x!.shape[1]! : 1;
          quantizeFloat8(x, scale.shape.length === 0 ? s[0]! : s, c.kind, codes, { inner, backend });
          expect(bytesOf(codes)).toEqual(bytesOf(decodeTensor(r.codes).data));
        });
      }
    }
  }
});
  describe(`kquant quantize --float8's arithmetic (golden from Keras on ${backend})`, () => {
    const cli = golden.cases.filter((c) => c.op === "cli");
    it("covers a 1e-30..1e37 range, a subnormal scale, ties and a margin, for both kinds", () => {
      expect(cli.length).toBe(12);
    });
    for (const c of cli) {
      it(`${c.kind}: ${c.note}`, () => {
        const x = decodeTensor(c.x!) as Tensor<Float32Array>;
        // As quantize-tensor.ts does it: the abs-max, the scale from it, the codes with that scale.
        const { amax, shape } = absMaxAlong(x.data, x.shape, normalizeAxes(c.axis ?? null, x.shape.length));
        const scale = computeFloat8Scale({ dtype: "float32", shape, data: amax }, 1, FLOAT8_MAX[c.kind], c.margin, backend);
        expect(bytesOf(scale.data)).toEqual(bytesOf(decodeTensor(c.scale!).data));
        const layout = broadcastLayout(scale.data, shape, x.shape, "scale");
        for (const simd of [true, false]) {
          const codes = new Uint8Array(x.data.length);
          const was = useSimd(simd);
          try {
            quantizeFloat8(x.data, layout.values, c.kind, codes, { inner: layout.inner, backend });
          } finally {
            useSimd(was);
          }
          expect(bytesOf(codes)).toEqual(bytesOf(decodeTensor(c.codes!).data));
        }
      });
    }
  });
}
