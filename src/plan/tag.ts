/**
 * The tag in a default output name (`model.<tag>.safetensors`): every option that changes the
 * output's bytes, so two different runs never write the same name. Options left at Keras's
 * defaults (the mode descriptor's) are not spelled out; the mode's part is its descriptor's `tag`.
 *
 *   --int8                          int8
 *   --int4 --block-size 32          int4-g32
 *   --float8 e5m2                   float8-e5m2
 *   --int8 --axis 0                 int8-axis0
 *   --int8 --per-tensor             int8-tensor
 *   --int4 --layout gguf            int4-gguf
 *   --int8 --include 'mlp.*'        int8-sel3f9a1c (a digest of the selection)
 */
import { createHash } from "node:crypto";
import { modeNamed } from "../modes/registry.js";
import type { QuantSpec } from "./spec.js";

export interface TagExtras {
  /** The layout, when not kquant's own. */
  layout?: string;
  /** --include / --exclude patterns: which tensors are quantized. */
  include?: readonly string[];
  exclude?: readonly string[];
}

/** The tag for a run of `spec` (see above). */
export function tagOfSpec(spec: QuantSpec, extras: TagExtras = {}): string {
  const mode = modeNamed(spec.mode);
  const d = mode.defaults();
  const parts: string[] = [mode.tag];
  if (spec.blockSize !== undefined) parts.push(`g${spec.blockSize}`);
  if (spec.axis !== d.axis) parts.push(spec.axis === null ? "tensor" : `axis${spec.axis}`);
  if (spec.packAxis !== undefined && spec.packAxis !== spec.axis) parts.push(`pack${spec.packAxis}`);
  if (spec.valueRange !== undefined && String(spec.valueRange) !== String(d.valueRange)) parts.push(`r${spec.valueRange.join("_")}`);
  if (spec.epsilon !== undefined && spec.epsilon !== d.epsilon) parts.push(`eps${spec.epsilon}`);
  if (spec.margin !== undefined && spec.margin !== d.margin) parts.push(`m${spec.margin}`);
  return [...parts, ...extraParts(extras)].join("-");
}

/** The tag for a recipe run: the recipe's own file stem names the choices it makes. */
export function tagOfRecipe(recipeStem: string, extras: TagExtras = {}): string {
  return ["recipe", recipeStem.replace(/[^A-Za-z0-9_.]+/g, "_"), ...extraParts(extras)].join("-");
}

function extraParts(e: TagExtras): string[] {
  const parts: string[] = [];
  if (e.layout !== undefined && e.layout !== "kquant") parts.push(e.layout);
  if (e.include?.length || e.exclude?.length) {
    const digest = createHash("sha256").update(JSON.stringify([e.include ?? [], e.exclude ?? []])).digest("hex");
    parts.push(`sel${digest.slice(0, 6)}`);
  }
  return parts;
}
