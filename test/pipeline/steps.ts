/** Quantize steps for pipeline tests: every mode the pipeline treats differently, and one step's plan. */
import { byteLengthOf } from "../../src/formats/dtypes.js";
import { rulesFromFlags, type QuantFlags } from "../../src/plan/from-flags.js";
import { buildPlan, type QuantizeStep } from "../../src/plan/plan.js";

export const QUANT_MODES: [string, QuantFlags][] = [
  ["int8", { mode: "int8" }],
  ["int8-axis0", { mode: "int8", axis: 0 }],
  ["int8-per-tensor", { mode: "int8", perTensor: true }],
  ["int4", { mode: "int4" }],
  ["int4-axis0", { mode: "int4", axis: 0 }],
  ["int4-block32", { mode: "int4", blockSize: 32 }],
  ["int4-block16-axis0", { mode: "int4", blockSize: 16, axis: 0 }],
  ["float8", { mode: "float8" }],
  ["float8-e5m2-per-channel", { mode: "float8", float8Kind: "e5m2", axis: -1 }],
];

/** The plan's step for one tensor "w" of `shape` quantized as `flags` say. */
export function stepFor(flags: QuantFlags, shape: number[], dtype: "F32" | "BF16" | "F16" = "F32"): QuantizeStep {
  const info = { name: "w", dtype, shape, byteLength: byteLengthOf(dtype, shape), file: "x.safetensors" };
  const step = buildPlan("x.safetensors", [info], rulesFromFlags(flags)).steps[0]!;
  if (step.kind !== "quantize") throw new Error(`expected a quantize step for ${JSON.stringify(flags)} on ${JSON.stringify(shape)}`);
  return step;
}
