import { describe, expect, it } from "vitest";
import { buildPlan, type QuantizeStep } from "../../src/plan/plan.js";
import { quantizeTensor } from "../../src/pipeline/quantize/quantize-tensor.js";
import { dequantizeRecord } from "../../src/pipeline/read-back/record-values.js";
import { rulesFromFlags } from "../../src/plan/from-flags.js";
import { manifestFromMetadata, newManifest, recordFor, MANIFEST_KEY } from "../../src/pipeline/manifest.js";

const tensors = [
  { name: "w", dtype: "F32" as const, shape: [64, 64], byteLength: 64 * 64 * 4, file: "m.safetensors" },
  { name: "b", dtype: "F32" as const, shape: [64], byteLength: 64 * 4, file: "m.safetensors" },
];

function metadataWith(edit: (m: Record<string, any>) => void): Record<string, string> {
  const plan = buildPlan("m.safetensors", tensors, rulesFromFlags({ mode: "int4", blockSize: 32 }));
  const m = newManifest("kquant", "m.safetensors", null, {}, plan.steps) as unknown as Record<string, any>;
  edit(m);
  return { [MANIFEST_KEY]: JSON.stringify(m) };
}

describe("manifestFromMetadata", () => {
  it("reads a manifest the writer made", () => {
    expect(Object.keys(manifestFromMetadata(metadataWith(() => {}), "q.safetensors")!.tensors)).toEqual(["w", "b"]);
  });

  it("checks every record once, where it is read, naming the file and the tensor", () => {
    const bad = metadataWith((m) => (m.tensors.w.block_size = 0));
    expect(() => manifestFromMetadata(bad, "q.safetensors")).toThrow(/^q\.safetensors: tensor "w": the kquant manifest record: block size 0 is not a positive integer$/);
    const axis = metadataWith((m) => (m.tensors.w.axis = 7));
    expect(() => manifestFromMetadata(axis, "q.safetensors")).toThrow(/tensor "w": .*axis 7 is out of range/);
    const mode = metadataWith((m) => (m.tensors.w.mode = "int3"));
    expect(() => manifestFromMetadata(mode, "q.safetensors")).toThrow(/tensor "w": .*mode "int3" is unknown/);
    expect(() => manifestFromMetadata({ [MANIFEST_KEY]: "{" }, "q.safetensors")).toThrow(/^q\.safetensors: the kquant manifest is not valid JSON/);
  });
});

describe("the record's dequantize formula", () => {
  const formulaOf = (flags: Parameters<typeof rulesFromFlags>[0], shape: number[]) => {
    const plan = buildPlan("m.safetensors", [{ name: "w", dtype: "F32", shape, byteLength: shape.reduce((a, b) => a * b, 1) * 4, file: "m" }], rulesFromFlags(flags));
    return newManifest("kquant", "m", null, {}, plan.steps).tensors.w!.dequantize;
  };

  it("says how to unpack and expand the groups, per tensor", () => {
    expect(formulaOf({ mode: "int8" }, [64, 32])).toBe("q = values; q / scale");
    expect(formulaOf({ mode: "int4", axis: 0 }, [64, 32])).toBe("q = unpack_int4(values, orig_len=64, axis=0); q / scale");
    expect(formulaOf({ mode: "int4", blockSize: 32, axis: 0 }, [64, 16])).toBe(
      "q = unpack_int4(values, orig_len=64, axis=0); (q - repeat(zero, 32, axis=0)[:64]) * repeat(scale, 32, axis=0)[:64]",
    );
    expect(formulaOf({ mode: "int4", blockSize: 32 }, [64, 176])).toBe(
      "q = unpack_int4(values, orig_len=176, axis=1); (q - repeat(zero, 32, axis=1)[:, :176]) * repeat(scale, 32, axis=1)[:, :176]",
    );
    expect(formulaOf({ mode: "float8", float8Kind: "e5m2" }, [8, 8])).toBe("q = float8_e5m2_to_float32(values); q * scale");
  });

  it("is what dequantize computes: followed literally on grouped int4 with a partial last group", () => {
    const shape = [6, 5];
    const source = Float32Array.from({ length: 30 }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 7)));
    const plan = buildPlan("m", [{ name: "w", dtype: "F32", shape, byteLength: 120, file: "m" }], rulesFromFlags({ mode: "int4", blockSize: 4, axis: 0 }));
    const step = plan.steps[0] as QuantizeStep;
    const stored = quantizeTensor(step, new Uint8Array(source.buffer), "m");
    const rec = recordFor(step);
    const expected = dequantizeRecord(rec, stored);

    // The formula's numbers, then numpy's meaning of each step, written out for this 2-D case.
    const m = /unpack_int4\(values, orig_len=(\d+), axis=(\d)\); \(q - repeat\(zero, (\d+), axis=(\d)\)\[:(\d+)\]\) \* repeat\(scale, \3, axis=\4\)\[:\5\]/.exec(rec.dequantize!)!;
    const [origLen, packAxis, block, axis] = [m[1], m[2], m[3], m[4]].map(Number);
    expect([origLen, packAxis, axis]).toEqual([6, 0, 0]);
    const packed = new Int8Array(stored.values.buffer, stored.values.byteOffset, stored.values.length);
    const scale = new Float32Array(stored.scale.slice().buffer);
    const zero = new Int8Array(stored.zero!.slice().buffer);
    const cols = shape[1]!;
    const got = new Float32Array(30);
    for (let r = 0; r < 6; r++) {
      for (let c = 0; c < cols; c++) {
        const byte = packed[Math.floor(r / 2) * cols + c]!;
        const nibble = r % 2 === 0 ? byte & 0x0f : (byte >> 4) & 0x0f; // low nibble first
        const q = nibble >= 8 ? nibble - 16 : nibble;
        const g = Math.floor(r / block!) * cols + c;
        got[r * cols + c] = Math.fround(Math.fround(q - zero[g]!) * scale[g]!);
      }
    }
    expect(got).toEqual(expected);
  });
});
