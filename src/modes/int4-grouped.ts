/**
 * int4_grouped: Keras's `abs_max_quantize_grouped_with_zero_point` (asymmetric int4, a scale and a
 * zero point per group of `blockSize` along the axis, 2-D tensors), codes packed two per byte.
 * Stored: values I8 (the pack axis halved), scale F32 and zero I8 of `groupCount` groups on the axis.
 */
import { dequantizeZeroPoint, scaleLayout } from "../quant/dequantize.js";
import { quantizeGroupedNumpy } from "../quant/dense.js";
import { countNonFinite } from "../quant/finite.js";
import { absMaxQuantizeGroupedWithZeroPoint, quantizeRowGroupedPacked } from "../quant/grouped.js";
import { groupCount } from "../quant/groups.js";
import { unpackInt4 } from "../quant/int4.js";
import { byteView, sizeOf, type Tensor } from "../quant/tensor.js";
import { simdDequantizeRowGroups } from "../quant/wasm/read-back-kernels.js";
import type { QuantSpec } from "../plan/spec.js";
import type { StoredBytes, StoredGeometry } from "../plan/stored.js";
import { intCodeProblems, rangeProblem } from "./abs-max.js";
import { outsideRange } from "./code-checks.js";
import { f32Of, float32View, i8Of, packedShape, packInto, place, unpackFormula, whereOf } from "./kernel-bytes.js";
import type { KernelInput, KernelOutput, ModeDescriptor } from "./types.js";

type Args = { valueRange: readonly [number, number]; epsilon: number };

function quantize(input: KernelInput): KernelOutput {
  const { spec, shape, into } = input;
  const args: Args = { valueRange: spec.valueRange ?? [-127, 127], epsilon: spec.epsilon ?? 1e-7 };
  const fused = spec.kerasPath !== "dense-layer" && spec.axis !== 0 && spec.packAxis === 1 ? rowGroupedPacked(input, args) : null;
  if (fused !== null && !fused.nonFinite) return { stored: fused.stored, nonFinite: 0 };
  // Not for the fused kernels, or NaN / Inf in it: counted and refused, or quantized here.
  const x = input.float32();
  const nonFinite = input.count ? countNonFinite(x.data) : 0;
  // Refused anyway (the caller drops the bytes): no need to ask a backend that cannot cast NaN.
  if (nonFinite > 0) return { stored: { values: new Uint8Array(0), scale: new Uint8Array(0) }, nonFinite };
  const { values, scale, zero } =
    spec.kerasPath === "dense-layer" ? quantizeGroupedNumpy(x.data, shape[0]!, shape[1]!, spec.blockSize!) : groupedTensorPath(x, spec, args, input.int8Scratch(sizeOf(shape)));
  return {
    stored: {
      values: packInto(byteView(values), shape, spec.packAxis!, input, into?.values),
      scale: place(byteView(scale), into?.scale),
      zero: place(byteView(zero), into?.zero),
    },
    nonFinite,
  };
}

/**
 * Grouped int4 along the last axis, packed along it, in one fused pass over the source (float32
 * or 16-bit, widened in the kernels): the bytes of groupedTensorPath + packInto. Null where that
 * pass does not apply; `nonFinite` when some group held NaN or Inf (the bytes are then dropped).
 */
function rowGroupedPacked(input: KernelInput, args: Args): { stored: StoredBytes; nonFinite: boolean } | null {
  const { spec, shape, into } = input;
  if (shape.length !== 2) return null;
  const [rows, cols] = shape as [number, number];
  const src = input.source();
  if (src === null) return null;
  const groups = sizeOf(input.storedShape("zero"));
  const stored = {
    values: into?.values ?? new Uint8Array(sizeOf(input.storedShape("values"))),
    scale: into?.scale ?? new Uint8Array(groups * 4),
    zero: into?.zero ?? new Uint8Array(groups),
  };
  const scale = float32View(stored.scale);
  if (scale === undefined) return null;
  const zero = new Int8Array(stored.zero.buffer, stored.zero.byteOffset, groups);
  const done = quantizeRowGroupedPacked(src, [rows, cols], spec.blockSize!, { ...args, ...(spec.backend ? { backend: spec.backend } : {}) }, { values: stored.values, scale, zero });
  return done === null ? null : { stored, nonFinite: done.nonFinite };
}

/** `keras.quantizers.abs_max_quantize_grouped_with_zero_point`'s default (tensor) path, along the spec's axis. */
function groupedTensorPath(x: Tensor<Float32Array>, spec: QuantSpec, args: Args, out: Int8Array | undefined): { values: Int8Array; scale: Float32Array; zero: Int8Array } {
  // Axis 1 groups along the last axis directly: Keras's arithmetic on the transpose, with
  // scale and zero in the tensor's own orientation.
  const { values, scale, zeroPoint } = absMaxQuantizeGroupedWithZeroPoint(x, spec.blockSize!, {
    ...args,
    ...(spec.backend ? { backend: spec.backend } : {}),
    axis: spec.axis === 0 ? 0 : 1,
    ...(out ? { out } : {}),
  });
  return { values: values.data as Int8Array, scale: scale.data, zero: zeroPoint.data as Int8Array };
}

const scaleShape = (shape: readonly number[], g: StoredGeometry): number[] => shape.map((d, i) => (i === g.axis ? groupCount(d, g.blockSize!) : d));

function dequantize(shape: readonly number[], g: StoredGeometry, parts: StoredBytes, out: Float32Array): Float32Array {
  const scale = f32Of(parts.scale);
  if (shape.length === 2 && g.axis === 1 && g.packAxis === 1) {
    // Groups and packing along the rows: unpacked and dequantized block by block in the kernels.
    if (simdDequantizeRowGroups(parts.values, scale, i8Of(parts.zero!), shape[0]!, shape[1]!, g.blockSize!, out)) return out;
  }
  const q = unpackInt4({ dtype: "int8", shape: packedShape(shape, g.packAxis!), data: i8Of(parts.values) }, shape[g.packAxis!]!, g.packAxis!, "int8").data as Int8Array;
  dequantizeZeroPoint(q, scale, i8Of(parts.zero!), scaleLayout(shape, scaleShape(shape, g), { axis: g.axis!, blockSize: g.blockSize! }), out);
  return out;
}

function formula(spec: QuantSpec, shape: readonly number[]): string {
  const axis = spec.axis!;
  const n = shape[axis];
  const cut = axis === 0 ? `[:${n}]` : `[${", ".repeat(axis).replace(/, /g, ":, ")}:${n}]`;
  const expand = (t: string) => `repeat(${t}, ${spec.blockSize}, axis=${axis})${cut}`;
  return `${unpackFormula(spec, shape)}(q - ${expand("zero")}) * ${expand("scale")}`;
}

const CODE_RANGE: readonly [number, number] = [-8, 7];

/** int4_grouped (see the module comment). */
export const INT4_GROUPED: ModeDescriptor = {
  name: "int4_grouped",
  flag: "int4",
  bits: 4,
  kind: "int",
  codeRange: CODE_RANGE,
  packed: true,
  grouped: true,
  zeroPoint: true,
  valuesDtype: "I8",
  absMaxQuantizer: false,
  tag: "int4",
  minSqnrDb: 10,
  defaults: () => ({ mode: "int4_grouped", axis: -1, blockSize: 128, valueRange: [-8, 7], epsilon: 1e-7 }),
  specProblem(spec) {
    const block = spec.blockSize;
    if (block === undefined || !Number.isInteger(block) || block < 1) return { field: "blockSize", what: `block size ${block} is not a positive integer` };
    return rangeProblem(spec, 4, CODE_RANGE);
  },
  shapeProblem(shape, axis) {
    if (shape.length !== 2) return `grouped int4 needs a 2-D tensor, got shape [${shape}]`;
    if (axis === null) return "grouped int4 needs an axis to group along, not --per-tensor";
    return null;
  },
  scaleShape,
  formula,
  describe: (spec) => `zero point, block ${spec.blockSize} ${whereOf(spec.axis)}${spec.packAxis !== undefined ? `, packed axis ${spec.packAxis}` : ""}`,
  quantize,
  dequantize,
  codeProblems(parts, facts) {
    const out: ["values" | "zero", string][] = intCodeProblems(parts, facts, true);
    if (parts.zero) {
      // Keras's zero point lives in the signed range of the bit width value_range implies.
      const [lo, hi] = facts.valueRange!;
      const bits = Math.floor(Math.log2(hi - lo + 1));
      const p = outsideRange(i8Of(parts.zero), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1);
      if (p !== null) out.push(["zero", p]);
    }
    return out;
  },
};
