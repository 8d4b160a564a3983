/**
 * float8_e4m3fn and float8_e5m2: Keras's float8 recipe, a scale from the abs-max (per tensor by
 * default, or per slice along the axis) with `margin`, then the values cast to the float8 format.
 * Stored: values F8_E4M3 / F8_E5M2 (the source's shape), scale F32 ([] for one scale per tensor,
 * else the reduced axis kept as 1).
 */
import { broadcastLayout } from "../quant/broadcast.js";
import { dequantizeMultiply, scaleLayout } from "../quant/dequantize.js";
import { computeFloat8Scale, quantizeFloat8 } from "../quant/float8-scale.js";
import { decodeFloat8, FLOAT8_MAX, type Float8Kind } from "../quant/float8.js";
import { byteView } from "../quant/tensor.js";
import type { QuantSpec } from "../plan/spec.js";
import type { StoredBytes, StoredGeometry } from "../plan/stored.js";
import type { StDType } from "../formats/types.js";
import { float8Problem } from "./code-checks.js";
import { absMaxCounted, f32Of, keptScaleShape, place, whereOf } from "./kernel-bytes.js";
import type { KernelInput, KernelOutput, ModeDescriptor } from "./types.js";

const scaleShape = (shape: readonly number[], g: StoredGeometry): number[] => (g.axis === null ? [] : keptScaleShape(shape, g.axis));

function scaleOf(kind: Float8Kind, spec: QuantSpec, amax: Float32Array): Float32Array {
  return computeFloat8Scale({ dtype: "float32", shape: [amax.length], data: amax }, 1, FLOAT8_MAX[kind], spec.margin ?? 0, spec.backend).data;
}

function valuesWithScale(kind: Float8Kind, input: KernelInput, scale: Float32Array, into: Uint8Array | undefined): Uint8Array {
  const x = input.float32();
  const out = into ?? new Uint8Array(x.data.length);
  const layout = broadcastLayout(scale, input.storedShape("scale"), x.shape, `tensor "${input.name}" scale`);
  quantizeFloat8(x.data, layout.values, kind, out, { inner: layout.inner, backend: input.spec.backend });
  return out;
}

/** The two-pass kernels on one whole tensor: its abs-max, the scale, the values. */
function quantize(kind: Float8Kind, input: KernelInput): KernelOutput {
  const x = input.float32();
  const { amax, bad } = absMaxCounted(x, input.spec.axis, input.count);
  const scale = scaleOf(kind, input.spec, amax);
  return { stored: { values: valuesWithScale(kind, input, scale, input.into?.values), scale: place(byteView(scale), input.into?.scale) }, nonFinite: bad };
}

function dequantize(kind: Float8Kind, shape: readonly number[], g: StoredGeometry, parts: StoredBytes, out: Float32Array): Float32Array {
  const decoded = new Float32Array(parts.values.length);
  decodeFloat8(parts.values, decoded, kind);
  dequantizeMultiply(decoded, f32Of(parts.scale), scaleLayout(shape, scaleShape(shape, g)), out);
  return out;
}

function float8Mode(kind: Float8Kind, valuesDtype: StDType, formats: readonly string[], flagDefault: boolean, minSqnrDb: number): ModeDescriptor {
  return {
    name: kind,
    flag: "float8",
    formats,
    ...(flagDefault ? { flagDefault, flagHelp: "float8 with a computed scale (format: e4m3 = e4m3fn = float8_e4m3fn, the default, or e5m2 = float8_e5m2)" } : {}),
    bits: 8,
    kind: "float",
    packed: false,
    grouped: false,
    zeroPoint: false,
    float8: kind,
    valuesDtype,
    absMaxQuantizer: false,
    tag: kind.replace("float8_", "float8-"),
    minSqnrDb,
    defaults: () => ({ mode: kind, axis: null, margin: 0 }),
    scaleShape,
    formula: () => `q = ${kind}_to_float32(values); q * scale`,
    describe: (spec) => `amax ${whereOf(spec.axis)}, margin ${spec.margin ?? 0}`,
    quantize: (input) => quantize(kind, input),
    twoPass: { scale: (spec, amax) => scaleOf(kind, spec, amax), values: (input, scale, into) => valuesWithScale(kind, input, scale, into) },
    dequantize: (shape, g, parts, out) => dequantize(kind, shape, g, parts, out),
    codeProblems(parts) {
      const p = float8Problem(parts.values, kind);
      return p === null ? [] : [["values", p]];
    },
  };
}

/** float8_e4m3fn (--float8, --float8 e4m3). */
export const FLOAT8_E4M3FN = float8Mode("float8_e4m3fn", "F8_E4M3", ["e4m3", "e4m3fn", "float8_e4m3fn"], true, 20);

/** float8_e5m2 (--float8 e5m2). */
export const FLOAT8_E5M2 = float8Mode("float8_e5m2", "F8_E5M2", ["e5m2", "float8_e5m2"], false, 15);
