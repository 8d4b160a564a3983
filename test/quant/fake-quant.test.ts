import { describe, expect, it } from "vitest";
import { fakeQuantWithMinMaxVars } from "../../src/quant/fake-quant.js";
import type { Tensor } from "../../src/quant/tensor.js";
import { KERAS_BACKENDS, decodeTensor, loadGolden, nanBlind, refused, type GoldenTensor } from "../support/golden.js";

interface FakeQuantCase {
  note: string;
  x: GoldenTensor;
  min: GoldenTensor;
  max: GoldenTensor;
  num_bits: number;
  narrow_range: boolean;
  axis: number | null;
  expected: GoldenTensor;
  error?: string;
}

const golden = loadGolden<FakeQuantCase>("fake_quant", "jax");

for (const backend of KERAS_BACKENDS) {
  describe(`fake_quant_with_min_max_vars: golden vectors from Keras (${backend})`, () => {
    for (const c of loadGolden<FakeQuantCase>("fake_quant", backend).cases) {
      it(c.note, () => {
        const run = () =>
          fakeQuantWithMinMaxVars(decodeTensor(c.x), decodeTensor(c.min), decodeTensor(c.max), {
            numBits: c.num_bits,
            narrowRange: c.narrow_range,
            axis: c.axis,
            backend,
          });
        if (refused(c)) {
          // tf.quantization's per-channel kernel takes min/max of rank 1 only.
          expect(run).toThrow("fake_quant_with_min_max_vars (tensorflow): min/max must be");
          return;
        }
        const expected = decodeTensor(c.expected);
        const got = run();
        expect(got.dtype).toBe(expected.dtype);
        expect(got.shape).toEqual(expected.shape);
        // Which NaN (sign, payload) comes out of min/max/arithmetic on NaN differs between the
        // backends' vectorised body and scalar tail, and between CPUs (jax's degenerate ranges gave
        // 0x7fc00000 on one machine, 0xffc00000 on another): the vectors hold one quiet NaN for every
        // NaN (gen_fake_quant.py), and every other bit is exact.
        expect(nanBlind(got)).toEqual(nanBlind(expected));
      });
    }
  });
}

describe("fake_quant_with_min_max_vars: golden vectors from Keras (jax)", () => {
  it("covers bits 2..16, narrow range, per-channel with negative axes, 16-bit inputs, degenerate ranges", () => {
    const c = golden.cases;
    expect(new Set(c.map((k) => k.num_bits))).toEqual(new Set([2, 3, 4, 5, 7, 8, 16]));
    expect(c.some((k) => k.narrow_range)).toBe(true);
    expect(c.some((k) => k.axis !== null && k.axis < 0)).toBe(true);
    expect(c.some((k) => k.x.dtype === "float16") && c.some((k) => k.x.dtype === "bfloat16")).toBe(true);
    expect(c.some((k) => k.note.startsWith("degenerate [0.0, 0.0]"))).toBe(true);
  });

  it("takes plain numbers for per-tensor min/max", () => {
    const c = golden.cases.find((k) => k.note === "per-tensor [-0.3, 2.7] bits 8 narrow False")!;
    const got = fakeQuantWithMinMaxVars(decodeTensor(c.x), -0.3, 2.7, { backend: "jax" });
    expect(nanBlind(got)).toEqual(nanBlind(decodeTensor(c.expected)));
  });
});

describe("fake_quant_with_min_max_vars: bad arguments", () => {
  const x: Tensor = { dtype: "float32", shape: [2, 3], data: new Float32Array(6) };
  it("rejects an axis outside the inputs' rank, as Keras does", () => {
    expect(() => fakeQuantWithMinMaxVars(x, -1, 1, { axis: 2 })).toThrow(/axis 2/);
    expect(() => fakeQuantWithMinMaxVars(x, -1, 1, { axis: -3 })).toThrow(/axis -3/);
  });
  it("rejects min/max that do not broadcast onto the inputs", () => {
    const v2: Tensor = { dtype: "float32", shape: [2], data: new Float32Array([-1, -1]) };
    expect(() => fakeQuantWithMinMaxVars(x, v2, 1, { axis: 0, backend: "jax" })).toThrow(/broadcast/);
    // tensorflow's per-channel kernel wants exactly one min/max per channel of the axis.
    expect(() => fakeQuantWithMinMaxVars(x, v2, 1, { axis: 1 })).toThrow(/min\/max must be of shape \(3,\)/);
  });
  it("rejects num_bits outside 2..16 and integer inputs", () => {
    expect(() => fakeQuantWithMinMaxVars(x, -1, 1, { numBits: 17 })).toThrow(/num_bits 17/);
    expect(() =>
      fakeQuantWithMinMaxVars({ dtype: "int8", shape: [1], data: new Int8Array(1) }, -1, 1),
    ).toThrow(/int8/);
  });
});
