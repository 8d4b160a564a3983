import { describe, expect, it } from "vitest";
import { DEFAULT_BACKEND, KERAS_BACKENDS, behaviourOf, isKerasBackend } from "../../src/quant/backend.js";
import { loadGolden } from "../support/golden.js";

describe("Keras backends", () => {
  it("defaults to tensorflow, Keras's own default, and refuses unknown names", () => {
    expect(DEFAULT_BACKEND).toBe("tensorflow");
    expect(behaviourOf(undefined)).toBe(behaviourOf("tensorflow"));
    expect(isKerasBackend("mlx")).toBe(false);
    expect(() => behaviourOf("mlx" as never, "abs_max_quantize")).toThrow(
      'abs_max_quantize: unknown Keras backend "mlx" (expected one of tensorflow, torch, jax, numpy)',
    );
  });

  // The vectors of the functions that take no backend: int4 packing, dtype conversions and the
  // Quantizer classes' configs. The tests of those modules run the jax vectors; these are the same.
  for (const name of ["int4", "convert", "quantizer"]) {
    it(`${name}: every backend's vectors are jax's, case for case`, () => {
      const jax = loadGolden<unknown>(name, "jax");
      for (const backend of KERAS_BACKENDS) {
        const v = loadGolden<unknown>(name, backend);
        expect(v.backend).toBe(backend);
        expect(v.cases).toEqual(jax.cases);
      }
    });
  }
});
