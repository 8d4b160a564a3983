import { describe, expect, it } from "vitest";
import { KquantError } from "../../src/errors.js";
import type { DType } from "../../src/quant/tensor.js";
import { bitsOf, byteLengthOf, kerasDTypeOf, npyDescrOf, parseNpyDescr, ST_DTYPES, stDTypeOfKeras } from "../../src/formats/dtypes.js";

describe("safetensors dtypes", () => {
  it("has the reference's 22 dtypes with their bit widths", () => {
    expect(ST_DTYPES).toHaveLength(22);
    const expected: Record<string, number> = {
      BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F8_E4M3FNUZ: 8,
      F8_E5M2FNUZ: 8, I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
    };
    for (const d of ST_DTYPES) expect([d, bitsOf(d)]).toEqual([d, expected[d]]);
  });

  it("computes byte lengths and refuses partial bytes", () => {
    expect(byteLengthOf("F32", [2, 3])).toBe(24);
    expect(byteLengthOf("F64", [])).toBe(8);
    expect(byteLengthOf("BF16", [0, 7])).toBe(0);
    expect(byteLengthOf("F4", [4])).toBe(2);
    expect(byteLengthOf("F6_E2M3", [4])).toBe(3);
    expect(() => byteLengthOf("F4", [3])).toThrow(KquantError);
    expect(() => byteLengthOf("F6_E3M2", [2, 3])).toThrow(/36 bits, not a whole number of bytes/);
    expect(() => byteLengthOf("U8", [-1])).toThrow(KquantError);
    expect(() => byteLengthOf("U8", [2 ** 40, 2 ** 40])).toThrow(KquantError);
  });

  it("maps to and from kquant's Keras dtype names", () => {
    const pairs: [string, DType][] = [
      ["F32", "float32"], ["F16", "float16"], ["BF16", "bfloat16"], ["F64", "float64"], ["F8_E4M3", "float8_e4m3fn"],
      ["F8_E5M2", "float8_e5m2"], ["I8", "int8"], ["U8", "uint8"], ["I16", "int16"], ["U16", "uint16"], ["I32", "int32"],
      ["U32", "uint32"], ["I64", "int64"], ["U64", "uint64"], ["BOOL", "bool"],
    ];
    for (const [st, keras] of pairs) {
      expect(kerasDTypeOf(st as never)).toBe(keras);
      expect(stDTypeOfKeras(keras)).toBe(st);
    }
    for (const st of ["F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"] as const) expect(kerasDTypeOf(st)).toBeNull();
  });

  it("maps numpy descrs with their byte order", () => {
    expect(parseNpyDescr("<f4")).toEqual({ dtype: "F32", bigEndian: false });
    expect(parseNpyDescr(">f8")).toEqual({ dtype: "F64", bigEndian: true });
    expect(parseNpyDescr("=u2")).toEqual({ dtype: "U16", bigEndian: false });
    expect(parseNpyDescr("|b1")).toEqual({ dtype: "BOOL", bigEndian: false });
    expect(parseNpyDescr(">i1")).toEqual({ dtype: "I8", bigEndian: false });
    expect(parseNpyDescr("<c8")).toEqual({ dtype: "C64", bigEndian: false });
    expect(parseNpyDescr("|O")).toMatch(/object/);
    expect(parseNpyDescr("<U5")).toMatch(/unicode/);
    expect(parseNpyDescr("<f16")).toMatch(/unsupported/);
    expect(npyDescrOf("F16")).toBe("<f2");
    expect(npyDescrOf("U8")).toBe("|u1");
    expect(npyDescrOf("BOOL")).toBe("|b1");
    expect(npyDescrOf("BF16")).toBeNull();
  });
});
