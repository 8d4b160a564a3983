/**
 * quant/mlx/floats.ts storeAs: the bfloat16 store of float32 arrays, on their bits as they lie, is
 * bf16Bits (MLX's _MLX_BFloat16 store) value by value on every pattern class: ties, subnormals,
 * infinities, NaNs of any sign and payload; and reused arrays are handed out by role.
 */
import { describe, expect, it } from "vitest";
import { bf16Bits, storeAs } from "../../../src/quant/mlx/floats.js";
import { freshArrays, reusedArrays } from "../../../src/quant/arrays.js";

describe("storeAs", () => {
  it("float32 → bfloat16 on the bits is bf16Bits on each value, every upper half with tie and near-tie lower halves", () => {
    const lows = [0, 1, 0x7fff, 0x8000, 0x8001, 0xffff];
    const bits = new Uint32Array(65536 * lows.length);
    for (let hi = 0; hi < 65536; hi++) lows.forEach((lo, k) => (bits[hi * lows.length + k] = ((hi << 16) | lo) >>> 0));
    const values = new Float32Array(bits.buffer);
    const stored = storeAs(values, "bfloat16") as Uint16Array;
    const bad: string[] = [];
    for (let i = 0; i < values.length && bad.length < 5; i++) {
      if (stored[i] !== bf16Bits(values[i]!)) bad.push(`0x${bits[i]!.toString(16)}: 0x${stored[i]!.toString(16)}, bf16Bits 0x${bf16Bits(values[i]!).toString(16)}`);
    }
    expect(bad).toEqual([]);
    // An offset view (a block inside a larger array) reads its own elements.
    expect([...storeAs(values.subarray(7, 13), "bfloat16")]).toEqual([...stored.subarray(7, 13)]);
  });

  it("reusedArrays hands the same array back by role (its first n elements), freshArrays a new one", () => {
    const arrays = reusedArrays();
    const a = arrays("x", Float32Array, 8);
    const b = arrays("x", Float32Array, 4);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(4);
    expect(arrays("y", Float32Array, 4).buffer).not.toBe(a.buffer);
    expect(arrays("x", Uint16Array, 4)).toBeInstanceOf(Uint16Array);
    expect(freshArrays("x", Float32Array, 4).buffer).not.toBe(freshArrays("x", Float32Array, 4).buffer);
  });
});
