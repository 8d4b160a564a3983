/**
 * What a quantized tensor stores: the stored tensors' roles, names, dtypes and shapes, from the
 * mode's descriptor (src/modes: its values dtype, packing, scale shape, zero point).
 * The plan asks here what to write, the manifest what to record, the row split how stored rows
 * follow source rows, and dequantize/verify what a record's tensors must look like.
 *
 * For a source of shape S quantized by a spec whose axes are already non-negative:
 * - values: S, I8 (int8), or S with the pack axis halved (`ceil(S[p] / 2)`, int4 modes), or
 *   F8_E4M3 / F8_E5M2 (float8);
 * - scale: F32, S with the reduced axis kept as 1 (Keras's keepdims), [1, …] for one scale per
 *   tensor; grouped int4 keeps `groupCount(S[axis], blockSize)` groups on the axis instead; a
 *   float8 scale for the whole tensor is a scalar [];
 * - zero (grouped int4 only): I8, the scale's shape.
 */
import type { PlannedTensor } from "../formats/types.js";
import { modeNamed } from "../modes/registry.js";
import { packedShape } from "../modes/kernel-bytes.js";
import type { QuantSpec } from "./spec.js";

export type StoredRole = "values" | "scale" | "zero";

/** A tensor a quantized tensor stores: its role, name, dtype and shape. */
export interface StoredTensor extends PlannedTensor {
  role: StoredRole;
}

/** The bytes of one quantized tensor's stored tensors, by role (zero only for grouped int4). */
export interface StoredBytes {
  values: Uint8Array;
  scale: Uint8Array;
  zero?: Uint8Array;
}

/** The stored tensors' names, by role. */
export type StoredNames = { values: string; scale: string; zero?: string };

/** kquant's own names for source tensor `name`: `name`, `name_scale`, `name_zero`. */
export function storedNamesOf(name: string): Required<StoredNames> {
  return { values: name, scale: `${name}_scale`, zero: `${name}_zero` };
}

/** The geometry that decides the stored shapes (a spec's axes, already non-negative). */
export type StoredGeometry = Pick<QuantSpec, "mode" | "axis" | "packAxis" | "blockSize">;

/** The values' shape: the source's, with the int4 pack axis halved (rounded up). */
export function valuesShapeOf(shape: readonly number[], g: StoredGeometry): number[] {
  return packedShape(shape, modeNamed(g.mode).packed ? g.packAxis : undefined);
}

/** The scale's shape (and the zero point's, for grouped int4). */
export function scaleShapeOf(shape: readonly number[], g: StoredGeometry): number[] {
  return modeNamed(g.mode).scaleShape(shape, g);
}

/**
 * The tensors a source tensor of `shape` stores under `g`, in write order (values, scale, zero),
 * named by `names`. Shape: see the module comment.
 */
export function storedTensors(names: StoredNames, shape: readonly number[], g: StoredGeometry): StoredTensor[] {
  const mode = modeNamed(g.mode);
  const dtype = mode.valuesDtype;
  const scaleShape = scaleShapeOf(shape, g);
  const out: StoredTensor[] = [
    { role: "values", name: names.values, dtype, shape: valuesShapeOf(shape, g) },
    { role: "scale", name: names.scale, dtype: "F32", shape: scaleShape },
  ];
  if (mode.zeroPoint) {
    if (names.zero === undefined) throw new Error(`${g.mode} stores a zero point: it needs a name`);
    out.push({ role: "zero", name: names.zero, dtype: "I8", shape: [...scaleShape] });
  }
  return out;
}

/** The stored tensor of `role`, if the list has one. */
export function storedRole(stored: readonly StoredTensor[], role: StoredRole): StoredTensor | undefined {
  return stored.find((t) => t.role === role);
}
