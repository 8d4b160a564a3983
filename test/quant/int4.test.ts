import { describe, expect, it } from "vitest";
import { packInt4, packNibbles, unpackInt4, type Int4Container } from "../../src/quant/int4.js";
import { KquantError } from "../../src/errors.js";
import { bytesOf, decodeTensor, loadGolden, type GoldenTensor } from "../support/golden.js";

interface RoundtripCase {
  kind: "roundtrip";
  name: string;
  arr: GoldenTensor;
  axis: number;
  dtype: Int4Container;
  packed: GoldenTensor;
  packed_shape: number[];
  orig_len: number;
  unpacked: GoldenTensor;
}
interface UnpackCase {
  kind: "unpack";
  name: string;
  packed: GoldenTensor;
  orig_len: number;
  axis: number;
  dtype: Int4Container;
  unpacked: GoldenTensor;
}

const golden = loadGolden<RoundtripCase | UnpackCase>("int4", "jax");
const i8 = (shape: number[], values: number[]) => ({ dtype: "int8" as const, shape, data: Int8Array.from(values) });

describe("Keras's documented pack_int4 examples", () => {
  it("axis 0: [[-3,7],[2,-8],[1,0]] packs to [[45,-121],[1,0]] and back", () => {
    const { packed, packedShape, origLen } = packInt4(i8([3, 2], [-3, 7, 2, -8, 1, 0]), 0);
    expect(Array.from(packed.data)).toEqual([45, -121, 1, 0]);
    expect(packedShape).toEqual([2, 2]);
    expect(origLen).toBe(3);
    const back = unpackInt4(packed, origLen, 0);
    expect(back.shape).toEqual([3, 2]);
    expect(Array.from(back.data)).toEqual([-3, 7, 2, -8, 1, 0]);
  });
  it("axis 1: [[-3,7,2],[-8,1,0]] packs to [[125,2],[24,0]] and back", () => {
    const { packed, packedShape, origLen } = packInt4(i8([2, 3], [-3, 7, 2, -8, 1, 0]), 1);
    expect(Array.from(packed.data)).toEqual([125, 2, 24, 0]);
    expect(packedShape).toEqual([2, 2]);
    expect(origLen).toBe(3);
    expect(Array.from(unpackInt4(packed, origLen, 1).data)).toEqual([-3, 7, 2, -8, 1, 0]);
  });
});

describe("pack_int4 / unpack_int4 match Keras 3.15.1 bit for bit", () => {
  it("has the vectors of the pinned Keras", () => {
    expect(golden.keras_version).toBe("3.15.1");
    expect(golden.cases.length).toBeGreaterThan(30);
  });
  for (const c of golden.cases) {
    it(c.name, () => {
      const want = decodeTensor(c.unpacked);
      if (c.kind === "roundtrip") {
        const r = packInt4(decodeTensor(c.arr), c.axis, c.dtype);
        const wantPacked = decodeTensor(c.packed);
        expect(r.packed.dtype).toBe(wantPacked.dtype);
        expect(r.packed.shape).toEqual(wantPacked.shape);
        expect(r.packedShape).toEqual(c.packed_shape);
        expect(r.origLen).toBe(c.orig_len);
        expect(bytesOf(r.packed.data)).toEqual(bytesOf(wantPacked.data));
        const back = unpackInt4(r.packed, r.origLen, c.axis, c.dtype);
        expect(back.dtype).toBe(want.dtype);
        expect(back.shape).toEqual(want.shape);
        expect(bytesOf(back.data)).toEqual(bytesOf(want.data));
      } else {
        const back = unpackInt4(decodeTensor(c.packed), c.orig_len, c.axis, c.dtype);
        expect(back.dtype).toBe(want.dtype);
        expect(back.shape).toEqual(want.shape);
        expect(bytesOf(back.data)).toEqual(bytesOf(want.data));
      }
    });
  }
});

describe("int4 checks and the fused kernel", () => {
  it("packNibbles packs straight from int8 bytes like packInt4", () => {
    const src = Int8Array.from([-8, 7, -1, 0, 3, -4, 5]);
    const out = new Int8Array(4);
    packNibbles(src, [7], 0, out);
    expect(Array.from(out)).toEqual(Array.from(packInt4(i8([7], Array.from(src))).packed.data));
  });
  it("rejects wrong dtypes and axes with Keras's wording", () => {
    expect(() => packInt4(i8([2], [1, 2]), 0, "uint8")).toThrow(/expected uint8 tensor for packing, got int8/);
    expect(() => packInt4(i8([2], [1, 2]), 0, "int16" as Int4Container)).toThrow(KquantError);
    expect(() => packInt4(i8([2], [1, 2]), 1)).toThrow(/out of bounds/);
    const f = { dtype: "float32" as const, shape: [2], data: new Float32Array(2) };
    expect(() => unpackInt4(f, 2)).toThrow(/expected int8 or uint8 tensor for unpacking/);
    expect(() => unpackInt4(i8([2], [1, 2]), -1)).toThrow(KquantError);
  });
});
