/**
 * The checks a spec passes whatever tensor it meets (block size, value range, epsilon, margin), made
 * once: when flags or a recipe become rules, and when a manifest record is read back. What depends
 * on the tensor's rank (axes, 2-D for grouping) is the plan's (plan.ts).
 */
import { modeNamed } from "../modes/registry.js";
import type { QuantSpec } from "./spec.js";

/** A spec field a problem is about, so each caller can name it its own way (--block-size, "block_size"). */
export type SpecField = "blockSize" | "valueRange" | "epsilon" | "margin";

export interface SpecProblem {
  field: SpecField;
  what: string;
}

/** What is wrong with `spec` on any tensor, or null. */
export function specProblem(spec: QuantSpec): SpecProblem | null {
  // The mode's own checks (a block size, a value range its codes hold), the block size first.
  const own = modeNamed(spec.mode).specProblem?.(spec) ?? null;
  if (own?.field === "blockSize") return own;
  if (spec.valueRange !== undefined) {
    const [lo, hi] = spec.valueRange;
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo < hi)) return { field: "valueRange", what: `value range [${lo}, ${hi}] is not two increasing integers` };
  }
  if (own) return own;
  if (spec.epsilon !== undefined && !(spec.epsilon >= 0)) return { field: "epsilon", what: `epsilon ${spec.epsilon} is not a non-negative number` };
  if (spec.margin !== undefined && !Number.isInteger(spec.margin)) return { field: "margin", what: `margin ${spec.margin} is not an integer` };
  if (spec.margin !== undefined && spec.margin >= 31) return { field: "margin", what: `margin ${spec.margin} makes 2**margin overflow int32 (Keras refuses it too)` };
  return null;
}
