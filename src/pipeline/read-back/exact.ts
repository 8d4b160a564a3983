/**
 * `verify --against ORIGINAL --exact`: kquant is deterministic, so the stored bytes of a record
 * must be exactly what its mode's kernel (the quantize pipeline's own, quantize-tensor.ts) makes
 * from the original with the options the manifest records. This finds a forged scale or code
 * whose hash was recomputed to match. Pure, so a worker thread runs it too.
 */
import type { StDType } from "../../formats/types.js";
import type { Layout } from "../../layouts/layout.js";
import type { QuantizeStep } from "../../plan/plan.js";
import type { QuantSpec } from "../../plan/spec.js";
import { storedNamesOf, storedTensors, type StoredBytes, type StoredRole } from "../../plan/stored.js";
import { geometryOf, type TensorRecord } from "../manifest.js";
import { quantizeCounted } from "../quantize/quantize-tensor.js";

/** The spec a record was quantized with: its recorded options, and what its layout adds (Keras's Dense arithmetic). */
function specOf(rec: TensorRecord, layout: Layout, source: QuantizeStep["source"]): QuantSpec {
  const spec: QuantSpec = {
    mode: rec.mode as QuantSpec["mode"],
    axis: rec.axis ?? null,
    ...(rec.pack_axis !== undefined ? { packAxis: rec.pack_axis } : {}),
    ...(rec.block_size !== undefined ? { blockSize: rec.block_size } : {}),
    ...(rec.value_range !== undefined ? { valueRange: rec.value_range } : {}),
    ...(rec.epsilon !== undefined ? { epsilon: rec.epsilon } : {}),
    ...(rec.margin !== undefined ? { margin: rec.margin } : {}),
    ...(rec.backend !== undefined ? { backend: rec.backend } : {}),
  };
  const adapted = layout.adapt(source, spec);
  return typeof adapted === "string" || adapted.kerasPath === undefined ? spec : { ...spec, kerasPath: adapted.kerasPath };
}

/**
 * Where the stored bytes of quantized record `rec` (by role: values, scale, zero) differ from what
 * the kernel derives from the original, one line per tensor naming it, the count of bytes that
 * differ and the first; [] when they are the same.
 */
export function exactProblems(
  name: string,
  rec: TensorRecord,
  layout: Layout,
  original: { dtype: StDType; bytes: Uint8Array },
  stored: ReadonlyMap<StoredRole, Uint8Array>,
  storedName: (role: StoredRole) => string,
): string[] {
  const g = geometryOf(rec);
  if (typeof g === "string") return [g];
  const source = { name, dtype: original.dtype, shape: rec.shape, byteLength: original.bytes.length, file: "" };
  const step: QuantizeStep = { kind: "quantize", source, spec: specOf(rec, layout, source), origin: rec.rule ?? "", stored: storedTensors(storedNamesOf(name), rec.shape, g), written: [] };
  // Non-finite values were quantized (the run allowed them) or the run refused: the bytes say which.
  const derived: StoredBytes | null = quantizeCounted(step, original.bytes, { allowNonFinite: true }).stored;
  if (derived === null) return ["the kernel makes nothing of the original"];
  const problems: string[] = [];
  const by = `the ${rec.mode} kernel makes from the original with the manifest's options`;
  for (const role of ["values", "scale", "zero"] as const) {
    const want = derived[role];
    const have = stored.get(role);
    if (want === undefined && have === undefined) continue;
    const p = storedDifference(`${role} tensor "${storedName(role)}"`, want, have, by);
    if (p !== null) problems.push(p);
  }
  return problems;
}

/**
 * How stored bytes `have` differ from the `want`ed ones `by` derives (a phrase: "the int8 kernel
 * makes from …"), in one line starting with `what` (the stored tensor), or null when they are equal.
 */
export function storedDifference(what: string, want: Uint8Array | undefined, have: Uint8Array | undefined, by: string): string | null {
  if (want === undefined || have === undefined || want.length !== have.length) {
    return `${what}: not what ${by} (${have?.length ?? 0} bytes stored, ${want?.length ?? 0} derived)`;
  }
  let count = 0;
  let first = -1;
  for (let i = 0; i < want.length; i++) {
    if (want[i] !== have[i]) {
      if (count === 0) first = i;
      count++;
    }
  }
  return count === 0 ? null : `${what}: ${count} of ${want.length} byte(s) differ from what ${by} (first at byte ${first})`;
}
