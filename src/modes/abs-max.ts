/**
 * int8 and packed int4: Keras's `abs_max_quantize` (a symmetric scale per slice along the axis, or
 * one per tensor), int4 codes packed two per byte along the pack axis. Stored: values I8 (int4:
 * the pack axis halved, rounded up), scale F32 with the reduced axis kept as 1.
 */
import { absMaxQuantize, absMaxScale, clipBounds, quantizeToInt, refuseNaNCast } from "../quant/absmax.js";
import { planAbsMax } from "../quant/axes.js";
import { behaviourOf } from "../quant/backend.js";
import { dequantizeDivide, scaleLayout } from "../quant/dequantize.js";
import { unpackInt4 } from "../quant/int4.js";
import { byteView } from "../quant/tensor.js";
import { simdQuantizeInt8 } from "../quant/wasm/kernels.js";
import type { QuantSpec } from "../plan/spec.js";
import type { StoredBytes, StoredGeometry } from "../plan/stored.js";
import { int4Problems, outsideRange } from "./code-checks.js";
import { f32Of, float32View, i8Of, keptScaleShape, packedShape, packInto, place, unpackFormula, whereOf } from "./kernel-bytes.js";
import type { SpecProblem } from "../plan/spec-check.js";
import type { CodeFacts, KernelInput, KernelOutput, ModeDescriptor } from "./types.js";

const DEFAULT_RANGE: readonly [number, number] = [-127, 127];
const DEFAULT_EPSILON = 1e-7;

/** The kernel: abs-max codes (int8 straight into the destination; int4 via scratch, then packed). */
function quantize(input: KernelInput, packed: boolean): KernelOutput {
  const { spec, shape, into } = input;
  const n = shape.reduce((a, b) => a * b, 1);
  const direct = packed ? input.int8Scratch(n) : into && new Int8Array(into.values.buffer, into.values.byteOffset, n);
  const { values, scale, nonFinite } = absMaxQuantize(input.sixteenBit() ?? input.float32(), spec.axis, {
    valueRange: spec.valueRange ?? DEFAULT_RANGE,
    epsilon: spec.epsilon ?? DEFAULT_EPSILON,
    backend: spec.backend,
    countNonFinite: input.count,
    out: { values: direct, scale: float32View(into?.scale) },
  });
  const codes = byteView(values.data);
  const stored = packed ? packInto(codes, shape, spec.packAxis!, input, into?.values) : place(codes, into?.values);
  return { stored: { values: stored, scale: place(byteView(scale.data), into?.scale) }, nonFinite };
}

/** Pass 2 of a row split: the slice's codes (packed for int4) with the whole tensor's scale. */
function valuesWithScale(input: KernelInput, scale: Float32Array, into: Uint8Array | undefined, packed: boolean): Uint8Array {
  const { spec } = input;
  const x = input.float32();
  const n = x.data.length;
  const plan = planAbsMax(x.shape, spec.axis === null ? null : [spec.axis]);
  const b = behaviourOf(spec.backend);
  refuseNaNCast(x.data, scale, plan, b, "abs_max_quantize");
  const [lo, hi] = clipBounds(spec.valueRange ?? DEFAULT_RANGE, "int8", b.flushSubnormals, b.intCast === "wrap");
  // int8 codes go straight into the destination; int4 codes wait in scratch to be packed there.
  const codes = packed ? (input.int8Scratch(n) ?? new Int8Array(n)) : into ? new Int8Array(into.buffer, into.byteOffset, n) : new Int8Array(n);
  if (!simdQuantizeInt8(x.data, plan, scale, lo, hi, codes, b.flushSubnormals)) quantizeToInt(x.data, scale, plan, lo, hi, codes, b.flushSubnormals);
  return packed ? packInto(byteView(codes), x.shape, spec.packAxis!, input, into) : place(byteView(codes), into);
}

function dequantize(shape: readonly number[], g: StoredGeometry, parts: StoredBytes, out: Float32Array, packed: boolean): Float32Array {
  let q = i8Of(parts.values);
  if (packed) {
    q = unpackInt4({ dtype: "int8", shape: packedShape(shape, g.packAxis!), data: q }, shape[g.packAxis!]!, g.packAxis!, "int8").data as Int8Array;
  }
  dequantizeDivide(q, f32Of(parts.scale), scaleLayout(shape, keptScaleShape(shape, g.axis)), out);
  return out;
}

/** Codes inside the value range (both nibbles, and a zero padding nibble, when packed). */
export function intCodeProblems(parts: StoredBytes, f: CodeFacts, packed: boolean): ["values", string][] {
  const [lo, hi] = f.valueRange!;
  if (packed) return int4Problems(i8Of(parts.values), f.valuesShape, f.packAxis!, f.origLen!, lo, hi).map((p) => ["values", p]);
  const p = outsideRange(i8Of(parts.values), lo, hi);
  return p === null ? [] : [["values", p]];
}

/** A value range that does not fit the mode's `bits`-bit codes [lo, hi]. */
export function rangeProblem(spec: QuantSpec, bits: number, [lo, hi]: readonly [number, number]): SpecProblem | null {
  const r = spec.valueRange;
  if (r === undefined || (r[0] >= lo && r[1] <= hi)) return null;
  return { field: "valueRange", what: `value range [${r[0]}, ${r[1]}] does not fit int${bits} [${lo}, ${hi}]` };
}

/** The parts int8 and int4 share: abs-max codes divided by a symmetric scale. */
function absMaxMode(m: { name: "int8" | "int4"; flagHelp: string; bits: number; codeRange: readonly [number, number]; packed: boolean; withBlockSize?: "int4_grouped"; defaultRange: [number, number]; minSqnrDb: number }): ModeDescriptor {
  return {
    name: m.name,
    flag: m.name,
    flagDefault: true,
    flagHelp: m.flagHelp,
    ...(m.withBlockSize ? { withBlockSize: m.withBlockSize } : {}),
    bits: m.bits,
    kind: "int",
    codeRange: m.codeRange,
    packed: m.packed,
    grouped: false,
    zeroPoint: false,
    valuesDtype: "I8",
    absMaxQuantizer: true,
    tag: m.name,
    minSqnrDb: m.minSqnrDb,
    defaults: () => ({ mode: m.name, axis: -1, valueRange: [...m.defaultRange], epsilon: DEFAULT_EPSILON }),
    specProblem: (spec) => rangeProblem(spec, m.bits, m.codeRange),
    scaleShape: (shape, g) => keptScaleShape(shape, g.axis),
    formula: (spec, shape) => `${unpackFormula(spec, shape)}q / scale`,
    describe: (spec) => `abs-max [${spec.valueRange?.join(",")}] ${whereOf(spec.axis)}${spec.packAxis !== undefined ? `, packed axis ${spec.packAxis}` : ""}`,
    quantize: (input) => quantize(input, m.packed),
    twoPass: {
      scale: (spec, amax) => absMaxScale(amax.slice(), (spec.valueRange ?? DEFAULT_RANGE)[1], spec.epsilon ?? DEFAULT_EPSILON, behaviourOf(spec.backend).flushSubnormals),
      values: (input, scale, into) => valuesWithScale(input, scale, into, m.packed),
    },
    dequantize: (shape, g, parts, out) => dequantize(shape, g, parts, out, m.packed),
    codeProblems: (parts, facts) => intCodeProblems(parts, facts, m.packed),
  };
}

/** int8: abs-max codes in [-127, 127] by default. */
export const INT8 = absMaxMode({ name: "int8", flagHelp: "abs-max int8, value range [-127, 127]", bits: 8, codeRange: [-128, 127], packed: false, defaultRange: [-127, 127], minSqnrDb: 30 });

/** int4: abs-max codes in [-8, 7], packed two per byte; with a block size, int4_grouped. */
export const INT4 = absMaxMode({
  name: "int4",
  flagHelp: "abs-max int4 [-8, 7], two values packed per byte (with --block-size: grouped with zero point)",
  bits: 4,
  codeRange: [-8, 7],
  packed: true,
  withBlockSize: "int4_grouped",
  defaultRange: [-8, 7],
  minSqnrDb: 10,
});
