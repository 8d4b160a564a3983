/**
 * What a plan should say before anything is written, when the flags do not do what they seem to:
 *
 * - an axis the layout overrides (compressed-tensors and MLX set their own scale axes): the flag
 *   changes nothing;
 * - an axis that gives one scale per input column of a PyTorch-layout checkpoint (Linear weights
 *   [out, in]; Keras's axis 0 is per output channel for its [in, out] kernels only);
 * - most weights left float by the layout or the mode (a group size that does not divide them):
 *   the run is close to a no-op, so the note names the reason and what would work;
 * - grouped int4 in compressed-tensors: transformers 5.24 / compressed-tensors 0.20 do not load it
 *   the default way (the model's zero point is shaped unpacked where the format packs it, and the
 *   decompressor only reads it packed, so no written shape serves both), and with other modes in
 *   the same folder not with `dequantize=True` either (one scheme for all).
 *
 * Pure: from the plan's steps and rules; the CLI prints the notes first (one line each).
 */
import type { Layout } from "../layouts/layout.js";
import type { Rule } from "./rules.js";
import type { PassthroughStep, Step } from "./plan.js";

/** Where a checkpoint's 2-D weights come from, as far as their axes go. */
export interface SourceFacts {
  /** Linear weights are [out, in] (a transformers config.json, or `format: pt` metadata). */
  pytorchLayout?: boolean;
}

/** Block sizes worth suggesting, largest first. */
const BLOCK_SIZES = [256, 128, 64, 32, 16];

const canonical = (axis: number | null | undefined, rank: number) => (axis === null || axis === undefined ? axis : axis < 0 ? axis + rank : axis);

/** The notes for a plan (see above), in the order they matter. */
export function planAdvice(steps: readonly Step[], rules: readonly Rule[], layout: Layout, facts: SourceFacts = {}): string[] {
  const notes: string[] = [];
  const byOrigin = new Map(rules.map((r) => [r.origin, r]));
  const overridden = new Set<string>();
  const perColumn = new Set<string>();
  for (const s of steps) {
    if (s.kind !== "quantize" || s.source.shape.length !== 2) continue;
    const rule = byOrigin.get(s.origin);
    if (!rule || rule.action.kind !== "quantize") continue;
    const asked = canonical(rule.action.spec.axis, 2);
    if (asked !== s.spec.axis && asked !== 1) overridden.add(`${s.origin}: axis ${rule.action.spec.axis}`);
    else if (facts.pytorchLayout && asked === 0 && s.spec.axis === 0) perColumn.add(s.origin);
  }
  for (const what of overridden) {
    notes.push(
      `${what} changes nothing with --layout ${layout.name}: the layout sets the scale axes itself (one scale per output channel, or groups along the input)`,
    );
  }
  for (const origin of perColumn) {
    notes.push(
      `${origin}: axis 0 on a PyTorch-layout checkpoint gives one scale per input column (Linear weights are [out, in] here; Keras's axis 0 is per output channel for its [in, out] kernels); --axis -1 is per output channel`,
    );
  }
  const mostly = mostlyFloat(steps, layout);
  if (mostly) notes.push(mostly);
  const grouped = groupedZeroPoint(steps, layout);
  if (grouped) notes.push(grouped);
  return notes;
}

/** The note for grouped int4 in a compressed-tensors folder (see above), or null. */
function groupedZeroPoint(steps: readonly Step[], layout: Layout): string | null {
  if (layout.name !== "compressed-tensors") return null;
  const modes = new Set(steps.flatMap((s) => (s.kind === "quantize" ? [s.spec.mode] : [])));
  if (!modes.has("int4_grouped")) return null;
  const how =
    modes.size > 1
      ? "nor, mixed with other modes, with CompressedTensorsConfig(dequantize=True) (one scheme for all)"
      : "load it with CompressedTensorsConfig(dequantize=True)";
  return `grouped int4 in compressed-tensors does not load the default way in transformers 5.24 / compressed-tensors 0.20 (zero point shape); ${how}; use --int4 per channel, or --layout kquant to keep the groups`;
}

/** A note when more than half of the weights (floating, 2-D or more) the rules meant to quantize stay float, or null. */
function mostlyFloat(steps: readonly Step[], layout: Layout): string | null {
  const meant = steps.filter((s) => s.source.shape.length >= 2 && (s.kind === "quantize" || involuntary(s)));
  const left = meant.filter((s): s is PassthroughStep => s.kind === "passthrough");
  if (meant.length === 0 || left.length * 2 <= meant.length) return null;
  const counts = new Map<string, number>();
  for (const s of left) counts.set(reasonKind(s.reason), (counts.get(reasonKind(s.reason)) ?? 0) + 1);
  const [reason] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
  const group = /group size (\d+) does not divide/.exec(reason);
  let fix = "";
  if (group) {
    const dims = [...new Set(left.filter((s) => s.reason.startsWith(reason)).map((s) => s.source.shape[s.source.shape.length - 1]!))];
    const allowed = layout.name === "mlx" ? [128, 64, 32] : BLOCK_SIZES;
    const fits = allowed.filter((b) => dims.every((d) => d % b === 0));
    fix = fits.length
      ? `; --block-size ${fits.slice(0, 2).join(" or ")} divides ${dims.join(", ")}`
      : `; no block size ${layout.name} takes divides ${dims.join(", ")}: try per-channel int4 (no --block-size)`;
  }
  return `${left.length} of ${meant.length} weights stay float (${left.length - (counts.get(reason) ?? 0) > 0 ? "mostly: " : ""}${reason})${fix}; the output is close to the input`;
}

/** A passthrough the user did not ask for: the layout or the mode could not take the tensor. */
function involuntary(s: PassthroughStep): boolean {
  return s.reason.startsWith("cannot take") || s.reason.includes(" layout: ");
}

/** A reason without the numbers of one tensor's shape, so that equal reasons count together. */
function reasonKind(reason: string): string {
  return reason.replace(/ (in_features|the last dimension) \d+$/, " $1");
}
