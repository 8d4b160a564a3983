import { describe, expect, it } from "vitest";
import {
  AbsMaxQuantizer,
  Quantizer,
  deserialize,
  get,
  pyRepr,
  serialize,
  type AbsMaxQuantizerOptions,
  type QuantizerConfig,
  type SerializedQuantizer,
} from "../../src/quant/quantizer.js";
import { absMaxQuantize } from "../../src/quant/absmax.js";
import { KquantError } from "../../src/errors.js";
import { bytesOf, decodeTensor, loadGolden, type GoldenTensor } from "../support/golden.js";

type Kwargs = { axis?: number | number[]; value_range?: [number, number]; epsilon?: number; output_dtype?: string };
type ByName = { identifier: string; class_name: string; config?: QuantizerConfig; output_dtype?: unknown };
type Case =
  | { kind: "serialize"; kwargs: Kwargs; serialized: SerializedQuantizer }
  | ({ kind: "get" } & ByName)
  | ({ kind: "deserialize_name" } & ByName)
  | { kind: "call"; how: "kwargs" | "get"; spec: Kwargs | string; axis: number | null; x: GoldenTensor; values: GoldenTensor; scale: GoldenTensor }
  | { kind: "error"; action: "construct" | "get" | "base_get_config"; arg: unknown; message: string };

const golden = loadGolden<Case>("quantizer", "jax");
const of = <K extends Case["kind"]>(kind: K) => golden.cases.filter((c): c is Extract<Case, { kind: K }> => c.kind === kind);

function options(k: Kwargs): AbsMaxQuantizerOptions {
  const o: AbsMaxQuantizerOptions = {};
  if (k.axis !== undefined) o.axis = k.axis;
  if (k.value_range !== undefined) o.valueRange = k.value_range;
  if (k.epsilon !== undefined) o.epsilon = k.epsilon;
  if (k.output_dtype !== undefined) o.outputDtype = k.output_dtype;
  return o;
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KquantError);
    return (e as Error).message;
  }
  throw new Error("expected an error");
}

describe("serialize writes Keras 3.15.1's JSON", () => {
  it("has the vectors of the pinned Keras", () => {
    expect(golden.keras_version).toBe("3.15.1");
    expect(of("serialize").length).toBeGreaterThanOrEqual(10);
  });
  for (const c of of("serialize")) {
    it(`AbsMaxQuantizer(${JSON.stringify(c.kwargs)})`, () => {
      const q = new AbsMaxQuantizer(options(c.kwargs));
      const json = JSON.parse(JSON.stringify(serialize(q))) as unknown;
      expect(json).toEqual(c.serialized);
      // and back: Keras's JSON deserializes to the same config
      const back = deserialize(c.serialized);
      expect(back).toBeInstanceOf(AbsMaxQuantizer);
      expect(back.getConfig()).toEqual(c.serialized.config);
      expect(get(c.serialized)!.getConfig()).toEqual(c.serialized.config);
      expect(AbsMaxQuantizer.fromConfig(q.getConfig()).getConfig()).toEqual(q.getConfig());
    });
  }
});

describe("get / deserialize by name follow Keras", () => {
  for (const c of [...of("get"), ...of("deserialize_name")]) {
    it(`${c.kind}(${c.identifier})`, () => {
      const q = c.kind === "get" ? get(c.identifier)! : deserialize(c.identifier);
      expect(q.className).toBe(c.class_name);
      if (c.config) expect(q.getConfig()).toEqual(c.config);
      else expect(q.outputDtype).toEqual(c.output_dtype);
    });
  }
  it("passes instances through and maps null to null", () => {
    const q = new AbsMaxQuantizer({ axis: 1 });
    expect(get(q)).toBe(q);
    expect(get(null)).toBeNull();
  });
});

describe("AbsMaxQuantizer.quantize matches Keras", () => {
  for (const c of of("call")) {
    it(`${c.how} ${JSON.stringify(c.spec)} axis=${c.axis}`, () => {
      const q = (c.how === "get" ? get(c.spec) : new AbsMaxQuantizer(options(c.spec as Kwargs))) as AbsMaxQuantizer;
      const r = c.axis === null ? q.quantize(decodeTensor(c.x)) : q.quantize(decodeTensor(c.x), c.axis);
      const ev = decodeTensor(c.values);
      const es = decodeTensor(c.scale);
      expect(r.values.dtype).toBe(ev.dtype);
      expect(r.scale.shape).toEqual(es.shape);
      expect(bytesOf(r.values.data)).toEqual(bytesOf(ev.data));
      expect(bytesOf(r.scale.data)).toEqual(bytesOf(es.data));
    });
  }
  it("defaults the axis to -1", () => {
    const x = { dtype: "float32" as const, shape: [2, 3], data: Float32Array.from([1, -2, 3, 4, 5, -6]) };
    expect(bytesOf(new AbsMaxQuantizer().quantize(x).values.data)).toEqual(bytesOf(absMaxQuantize(x, -1).values.data));
  });
  it("the base Quantizer is the identity", () => {
    const x = { dtype: "float32" as const, shape: [1], data: Float32Array.from([1.5]) };
    expect(new Quantizer().quantize(x)).toBe(x);
    expect(new Quantizer().outputDtype).toBe("int8");
  });
});

describe("errors carry Keras's messages", () => {
  for (const c of of("error")) {
    it(`${c.action} ${JSON.stringify(c.arg)}`, () => {
      const keras = c.message.replace(/^\w+: /, "");
      let ours: string;
      if (c.action === "construct") ours = messageOf(() => new AbsMaxQuantizer(options(c.arg as Kwargs)));
      else if (c.action === "get") ours = messageOf(() => get(c.arg));
      else ours = messageOf(() => new Quantizer().getConfig());
      // Keras wraps constructor failures inside deserialize in a multi-line message; kquant
      // keeps one line, the part Keras reports as the cause.
      if (keras.includes("\n")) expect(keras.endsWith(ours)).toBe(true);
      else expect(ours).toBe(keras);
    });
  }
  it("serialize of the base Quantizer fails like get_config", () => {
    expect(() => serialize(new Quantizer())).toThrow(/does not implement get_config\(\)/);
  });
  it("deserialize rejects unknown names", () => {
    expect(() => deserialize("Int8QuantizationConfig")).toThrow(/Could not interpret quantizer identifier/);
  });
  it("pyRepr prints values as Python does", () => {
    // repr({'a': [1, 1e-07, "x'y", 'q"\'z'], 'b': None, 'c': True}) in Python 3.11
    expect(pyRepr({ a: [1, 1e-7, "x'y", "q\"'z"], b: null, c: true })).toBe(
      `{'a': [1, 1e-07, "x'y", 'q"\\'z'], 'b': None, 'c': True}`,
    );
  });
});

describe("AbsMaxQuantizer on a chosen Keras backend", () => {
  it("quantizes as absMaxQuantize does on that backend (a subnormal scale kept on torch, flushed on tensorflow)", () => {
    for (const backend of ["tensorflow", "torch"] as const) {
      const c = loadGolden<{ name: string; x: GoldenTensor; values: GoldenTensor; scale: GoldenTensor }>("abs_max", backend).cases.find(
        (k) => k.name === "huge small range",
      )!;
      const q = new AbsMaxQuantizer({ axis: -1, valueRange: [-1, 1], backend });
      const { values, scale } = q.quantize(decodeTensor(c.x));
      expect(bytesOf(values.data)).toEqual(bytesOf(decodeTensor(c.values).data));
      expect(bytesOf(scale.data)).toEqual(bytesOf(decodeTensor(c.scale).data));
      expect(q.getConfig()).not.toHaveProperty("backend");
    }
    // The two backends do differ on this case, so the option is what decides.
    const [tf, torch] = (["tensorflow", "torch"] as const).map((b) => loadGolden<{ name: string; values: GoldenTensor }>("abs_max", b).cases.find((k) => k.name === "huge small range")!.values.b64);
    expect(tf).not.toBe(torch);
  });
});
