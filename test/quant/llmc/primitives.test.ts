import { describe, expect, it } from "vitest";
import { storedBits, type LlmcDType } from "../../../src/quant/llmc/arith.js";
import { mxExponentRawBits, roundToPowerOf2Bits } from "../../../src/quant/llmc/e8m0.js";
import { castToFp4, fp4Code, fp4CodeOf, packFp4Codes } from "../../../src/quant/llmc/fp4.js";
import { packColumnsInt32, packRowsInt32 } from "../../../src/quant/llmc/pack-int32.js";
import { llmcPreset } from "../../../src/quant/llmc/presets.js";
import { globalScale, groupQParams } from "../../../src/quant/llmc/qparams.js";
import { bytesOf, decodeTensor, nanBlind, type GoldenTensor } from "../../support/golden.js";
import { floatValues, loadLlmcGolden } from "../../support/llmc.js";

interface Case {
  op: string;
  input?: GoldenTensor;
  expected?: GoldenTensor;
  num_bits?: number;
  packed_dim?: number;
  preset?: string;
  min?: GoldenTensor;
  max?: GoldenTensor;
  global_scale?: GoldenTensor;
  scale?: GoldenTensor;
  zero_point?: GoldenTensor;
  error?: { error: string; message: string };
}

const golden = loadLlmcGolden<Case>("primitives");
const cases = (op: string) => golden.cases.filter((c) => c.op === op);

/** Values as the golden tensor's dtype stores them (float32 or bfloat16 bits), NaN-blind. */
function asStored(values: ArrayLike<number>, dtype: string): (number | "NaN")[] {
  if (dtype === "float32") return nanBlind({ dtype, data: Float32Array.from(values) });
  return nanBlind({ dtype, data: Uint16Array.from(Array.from(values), (v) => storedBits(v, dtype as LlmcDType)) });
}

/** A float32 / bfloat16 golden tensor's raw bit patterns (NaN payloads and signs kept). */
function rawBits(t: GoldenTensor): { dtype: LlmcDType; bits: Uint32Array | Uint16Array } {
  const d = decodeTensor(t).data as Float32Array | Uint16Array;
  return t.dtype === "float32"
    ? { dtype: "float32", bits: new Uint32Array(d.buffer, d.byteOffset, d.length) }
    : { dtype: t.dtype as LlmcDType, bits: d as Uint16Array };
}

function expectedStored(t: GoldenTensor): (number | "NaN")[] {
  return nanBlind({ dtype: t.dtype, data: decodeTensor(t).data as Float32Array });
}

describe("llm-compressor primitives: golden vectors from compressed-tensors 0.19.0 on CPU", () => {
  it("come from the pinned reference and cover both dtypes", () => {
    expect(golden.compressed_tensors_version).toBe("0.19.0");
    expect(golden.llmcompressor_version).toBe("0.14.0.1");
    expect(cases("round_to_power_2").map((c) => c.input!.dtype)).toEqual(["float32", "bfloat16", "float16"]);
    expect(cases("calculate_qparams")).toHaveLength(42);
    expect(cases("pack_to_int32")).toHaveLength(64);
  });

  for (const c of cases("round_to_power_2")) {
    it(`round_to_power_2 on ${c.input!.dtype}`, () => {
      const { dtype, bits } = rawBits(c.input!);
      const got = Array.from(bits, (b) => roundToPowerOf2Bits(b, dtype));
      expect(got).toEqual(Array.from(rawBits(c.expected!).bits));
    });
  }

  for (const c of cases("generate_mx_scales")) {
    it(`generate_mx_scales(num_bits=${c.num_bits}) on ${c.input!.dtype}`, () => {
      const { dtype, bits } = rawBits(c.input!);
      const got = Array.from(bits, (b) => mxExponentRawBits(b, dtype, c.num_bits as 4 | 8));
      expect(asStored(got, dtype)).toEqual(expectedStored(c.expected!));
    });
  }

  for (const c of cases("cast_to_fp4")) {
    it(`cast_to_fp4 on ${c.input!.dtype} (${c.input!.shape[0]} values)`, () => {
      const { dtype, values } = floatValues(c.input!);
      const got = Array.from(values, castToFp4);
      expect(asStored(got, dtype)).toEqual(expectedStored(c.expected!));
      // -0 results (a negative value rounded to zero) keep their sign: pack_fp4 reads it
      const exp = floatValues(c.expected!).values;
      expect(got.map((v) => Object.is(v, -0))).toEqual(Array.from(exp, (v) => Object.is(v, -0)));
      // the fused cast-and-code the kernels use writes the code pack_fp4_to_uint8 gives the cast
      expect(Array.from(values, fp4CodeOf)).toEqual(Array.from(exp, fp4Code));
    });
  }

  for (const c of cases("pack_fp4_to_uint8")) {
    it(`pack_fp4_to_uint8 of every code pair (${c.input!.dtype})`, () => {
      const { values } = floatValues(c.input!);
      const codes = Uint8Array.from(values, fp4Code);
      const out = new Uint8Array(codes.length / 2);
      packFp4Codes(codes, out);
      expect(Buffer.from(out)).toEqual(bytesOf(decodeTensor(c.expected!).data));
    });
  }

  for (const c of cases("pack_to_int32")) {
    const [rows, cols] = c.input!.shape as [number, number];
    it(`pack_to_int32 ${c.num_bits} bits [${rows}, ${cols}] packed_dim=${c.packed_dim}`, () => {
      const codes = decodeTensor(c.input!).data as Int8Array;
      const got = c.packed_dim === 1 ? packRowsInt32(codes, rows, cols, c.num_bits!) : packColumnsInt32(codes, rows, cols, c.num_bits!);
      const exp = decodeTensor(c.expected!);
      expect(Buffer.from(got.buffer)).toEqual(bytesOf(exp.data));
    });
  }

  for (const c of cases("generate_gparam")) {
    it(`generate_gparam on ${c.input!.dtype} absmax values`, () => {
      const { dtype, values } = floatValues(c.input!);
      const got = Float32Array.from(values, (v) => globalScale(v, dtype));
      expect(nanBlind({ dtype: "float32", data: got })).toEqual(expectedStored(c.expected!));
    });
  }

  for (const c of cases("calculate_qparams")) {
    it(`calculate_qparams for ${c.preset}'s weights on ${c.min!.dtype}`, () => {
      const preset = llmcPreset(c.preset!);
      const { dtype, values: mins } = floatValues(c.min!);
      const maxs = floatValues(c.max!).values;
      expect(c.error).toBeUndefined();
      const gs = c.global_scale ? (decodeTensor(c.global_scale).data as Float32Array) : undefined;
      const scales = new Float64Array(mins.length);
      const zeros = new Int8Array(mins.length);
      mins.forEach((mn, i) => groupQParams(mn, maxs[i]!, preset.weights!, dtype as LlmcDType, gs?.[i], scales, zeros, i));
      const scaleDtype = c.scale!.dtype;
      expect(asStored(Array.from(scales), scaleDtype)).toEqual(expectedStored(c.scale!));
      const zp = decodeTensor(c.zero_point!).data;
      expect(Array.from(zeros)).toEqual(Array.from(zp as ArrayLike<number>, Number));
    });
  }
});
