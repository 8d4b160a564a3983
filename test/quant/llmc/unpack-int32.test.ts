/**
 * unpack_from_int32's inverse of the reference's pack_to_int32 (vectors/primitives.json: 1..8 bits,
 * both packed dims, widths that do and do not fill words): kquant's unpacking gives the codes back,
 * and the padding check finds the reference's words clean and a set padding bit.
 */
import { describe, expect, it } from "vitest";
import { packedPaddingProblem } from "../../../src/modes/code-checks.js";
import { unpackColumnsInt32, unpackRowsInt32 } from "../../../src/quant/llmc/unpack-int32.js";
import { decodeTensor, type GoldenTensor } from "../../support/golden.js";
import { loadLlmcGolden } from "../../support/llmc.js";

/** A pack_to_int32 case: the codes, the packed words, the width and the packed dim. */
type PackCase = { op: string; input?: GoldenTensor; expected?: GoldenTensor; num_bits?: number; packed_dim?: number };
const cases = loadLlmcGolden<PackCase>("primitives").cases.filter((c) => c.op === "pack_to_int32");

describe("unpack_from_int32 of pack_to_int32's words gives the codes back", () => {
  it("covers every pack_to_int32 case", () => expect(cases).toHaveLength(64));
  for (const c of cases) {
    const [rows, cols] = c.input!.shape as [number, number];
    const bits = c.num_bits!;
    it(`${bits} bits [${rows}, ${cols}] packed_dim=${c.packed_dim}`, () => {
      const codes = decodeTensor(c.input!).data as Int8Array;
      const words = decodeTensor(c.expected!).data as Int32Array;
      const back = c.packed_dim === 1 ? unpackRowsInt32(words, rows, cols, bits) : unpackColumnsInt32(words, rows, cols, bits);
      expect(Array.from(back)).toEqual(Array.from(codes));
      if (c.packed_dim !== 1) return;
      expect(packedPaddingProblem(words, rows, cols, bits)).toBeNull();
      if ((cols * bits) % 32 === 0) return;
      const damaged = words.slice();
      const per = Math.ceil((cols * bits) / 32);
      damaged[per - 1]! |= 1 << 31;
      expect(packedPaddingProblem(damaged, rows, cols, bits)).toBe(`1 row(s) have padding bits set past the last ${bits}-bit code (first in row 0)`);
    });
  }
});
