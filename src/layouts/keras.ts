/**
 * `--layout keras`: every 2-D floating tensor `N` is a Dense kernel (input_dim, units) as stored,
 * written as exactly the variables `keras.layers.Dense(units).quantize(mode[, config])` leaves
 * in the layer in Keras 3.15.1 (src/quant/dense.ts; the same on every backend):
 *
 *   flags                       N (kernel)                    N_scale (kernel_scale)   N_zero (kernel_zero)   N_g_idx (g_idx)
 *   --int8                      int8 (in, out)                float32 (out,)           -                      -
 *   --int4                      int8 (in, ceil(out/2)) packed float32 (out,)           -                      -
 *   --int4 --block-size B       int8 (in, ceil(out/2)) packed float32 (ceil(in/B), out) int8 (ceil(in/B), out) float32 (in,) floor(i/B)
 *
 * int4 is packed along the units (the last axis); plain --int4 is Keras's per-channel int4
 * (`Int4QuantizationConfig(block_size=None)`), and Keras's own default, a plain
 * `layer.quantize("int4")`, is `--block-size 128`. The layout fixes the axes (scales per unit,
 * groups along the input rows); float8 has no Dense kernel to store and is refused.
 */
import { modeNamed } from "../modes/registry.js";
import type { QuantSpec } from "../plan/spec.js";
import { asStored, type Layout, type WrittenTensor } from "./layout.js";

/** Why a spec cannot be stored as a Keras Dense layer's variables, or null. */
function unsupported(spec: QuantSpec): string | null {
  const mode = modeNamed(spec.mode);
  if (mode.kind !== "int") {
    return "Keras's Dense.quantize stores no float8 kernel (it takes int8 and int4); choose --int8 or --int4";
  }
  // Dense.quantize uses the mode's default value range (int8 [-127, 127], int4 [-8, 7]).
  const keras = mode.defaults().valueRange!;
  const [lo, hi] = spec.valueRange ?? keras;
  if (lo !== keras[0] || hi !== keras[1]) return `Dense.quantize uses the value range [${keras}], not [${lo}, ${hi}]`;
  if ((spec.epsilon ?? 1e-7) !== 1e-7) return `Dense.quantize uses epsilon 1e-7, not ${spec.epsilon}`;
  return null;
}

export const KERAS_LAYOUT: Layout = {
  name: "keras",
  check: unsupported,
  adapt(source, spec) {
    if (source.shape.length !== 2) return `a Dense kernel is 2-D (input_dim, units), this is [${source.shape}]`;
    // Scales per unit (reduce over the input rows), groups of input rows, nibbles packed along the units.
    return { ...spec, axis: 0, packAxis: 1, kerasPath: "dense-layer" };
  },
  written(source, geometry, stored) {
    const out: WrittenTensor[] = asStored(stored);
    const scale = out.find((t) => t.from === "scale")!;
    if (!modeNamed(geometry.mode).grouped) {
      // Keras keeps the per-unit scale as (units,), not keepdims (1, units): the same bytes.
      scale.shape = [source.shape[1]!];
      return out;
    }
    const inputDim = source.shape[0]!;
    const block = geometry.blockSize!;
    out.push({
      name: `${source.name}_g_idx`,
      manifestKey: "g_idx",
      dtype: "F32",
      shape: [inputDim],
      encode: () => {
        const g = new Float32Array(inputDim);
        for (let i = 0; i < inputDim; i++) g[i] = Math.floor(i / block);
        return new Uint8Array(g.buffer);
      },
    });
    return out;
  },
};
