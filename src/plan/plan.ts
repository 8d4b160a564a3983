/**
 * The plan: for every tensor of the input, what it becomes in the output. Built and checked
 * before anything is read or written. A tensor that cannot take the mode a flag or a glob rule
 * gives it (a block size on a 4-D conv weight, an axis its rank does not have) falls back: it is
 * kept as it is, with the reason (`--strict` refuses instead); a rule that names the tensor
 * exactly fails the run up front. A run that would quantize nothing fails too.
 */
import { KquantError } from "../errors.js";
import { byteLengthOf } from "../formats/dtypes.js";
import type { PlannedTensor, StDType, TensorInfo } from "../formats/types.js";
import { normalizeAxes } from "../quant/axes.js";
import { KQUANT_LAYOUT } from "../layouts/kquant.js";
import type { Layout, WrittenTensor } from "../layouts/layout.js";
import { planAdvice, type SourceFacts } from "./advice.js";
import { compileRules, ruleMatcher, type Rule } from "./rules.js";
import { modeNamed } from "../modes/registry.js";
import type { QuantSpec } from "./spec.js";
import { storedNamesOf, storedTensors, type StoredTensor } from "./stored.js";

/** Source dtypes kquant quantizes (converted to float32 first, as documented). */
export const FLOATING: ReadonlySet<StDType> = new Set<StDType>(["F32", "F16", "BF16", "F64"]);

export interface QuantizeStep {
  kind: "quantize";
  source: TensorInfo;
  /** The spec with axes made non-negative for this tensor's rank. */
  spec: QuantSpec;
  origin: string;
  /** What the kernels make for it (plan/stored.ts), in order: values, scale[, zero]. */
  stored: StoredTensor[];
  /** What the file holds for it, in write order: the stored tensors as the layout names, shapes or re-encodes them. */
  written: WrittenTensor[];
}

export interface PassthroughStep {
  kind: "passthrough";
  source: TensorInfo;
  reason: string;
  output: PlannedTensor;
}

export type Step = QuantizeStep | PassthroughStep;

/** The tensors a step writes, in write order. */
export function writtenTensorsOf(step: Step): PlannedTensor[] {
  return step.kind === "passthrough" ? [step.output] : step.written;
}

export interface Plan {
  steps: Step[];
  warnings: string[];
  /** Tensors kept as they are because they cannot take the mode their rule gives them, in file order. */
  fallbacks: PassthroughStep[];
  /** Every tensor the output will hold, in write order. */
  outputs: PlannedTensor[];
}

/** The kernels' own axis check (normalizeAxes), as a value: the plan collects every problem before failing. */
export function canonicalAxis(axis: number, rank: number): number | undefined {
  try {
    return normalizeAxes(axis, rank)[0];
  } catch {
    return undefined;
  }
}

export interface PlanOptions {
  /** Refuse (exit 2) instead of falling back when a tensor cannot take its rule's mode. */
  strict?: boolean;
  /** A plan that quantizes no tensor is an error (default); a --shard job's share may hold none. */
  requireQuantized?: boolean;
  /** What the input's layout is known to be (for the notes of advice.ts). */
  source?: SourceFacts;
}

const GLOB_CHARS = /[*?]/;

/** The plan for `tensors` under `rules` (first match wins), written in `layout`. */
export function buildPlan(
  path: string,
  tensors: readonly TensorInfo[],
  rules: readonly Rule[],
  layout: Layout = KQUANT_LAYOUT,
  opts: PlanOptions = {},
): Plan {
  const compiled = compileRules(rules);
  for (const r of compiled) {
    const why = r.action.kind === "quantize" ? layout.check?.(r.action.spec) : null;
    if (why) throw new KquantError(`${path}: --layout ${layout.name}: ${why}`);
  }
  const used = new Set<number>();
  const problems: { tensor: string; what: string }[] = [];
  const steps: Step[] = [];
  const fallbacks: PassthroughStep[] = [];

  const matchOf = ruleMatcher(compiled);
  for (const t of tensors) {
    const index = matchOf(t.name);
    const rule = index >= 0 ? compiled[index] : undefined;
    if (rule) used.add(index);
    const passthrough = (reason: string): PassthroughStep => ({
      kind: "passthrough",
      source: t,
      reason,
      output: { name: t.name, dtype: t.dtype, shape: t.shape },
    });

    if (!rule) {
      steps.push(passthrough("no rule matched"));
    } else if (rule.action.kind === "skip") {
      steps.push(passthrough(`skipped by ${rule.origin}`));
    } else if (!FLOATING.has(t.dtype)) {
      steps.push(passthrough(`${t.dtype} is not a floating dtype`));
    } else if (t.shape.length < rule.minRank) {
      steps.push(passthrough(`rank ${t.shape.length} (biases and norms stay as they are)`));
    } else {
      const spec = layout.adapt(t, rule.action.spec);
      if (typeof spec === "string") {
        steps.push(passthrough(`${layout.name} layout: ${spec}`));
        continue;
      }
      const step = planQuantize(t, spec, rule.origin, layout);
      if (typeof step !== "string") steps.push(step);
      else if (rule.patterns.some((p) => !GLOB_CHARS.test(p) && p === t.name)) problems.push({ tensor: t.name, what: `${rule.origin} names it, and ${step}` });
      else {
        const fallback = passthrough(`cannot take ${rule.origin}: ${step}`);
        steps.push(fallback);
        fallbacks.push(fallback);
      }
    }
  }

  const outputs = steps.flatMap(writtenTensorsOf);
  const seen = new Set<string>();
  for (const o of outputs) {
    if (seen.has(o.name)) problems.push({ tensor: o.name, what: "would be written twice (an input tensor already has that name)" });
    seen.add(o.name);
  }
  const more = (n: number) => (n > 1 ? ` (+${n - 1} more)` : "");
  if (problems.length > 0) {
    const [first] = problems;
    throw new KquantError({ file: path, tensor: first!.tensor, what: `${first!.what}${more(problems.length)}` });
  }
  if (opts.strict && fallbacks.length > 0) {
    const [first] = fallbacks;
    throw new KquantError({ file: path, tensor: first!.source.name, what: `${first!.reason}${more(fallbacks.length)}`, hint: "without --strict they are kept as they are" });
  }
  if ((opts.requireQuantized ?? true) && !steps.some((s) => s.kind === "quantize")) throw nothingToQuantize(path, steps, fallbacks);

  const warnings = [
    ...planAdvice(steps, rules, layout, opts.source),
    ...compiled.filter((r, i) => !used.has(i) && !r.catchAll).map((r) => `${r.origin} (${r.patterns.join(", ")}) matched no tensor`),
  ];
  return { steps, warnings, fallbacks, outputs };
}

/** Why a plan quantizes nothing: the first fallback and their count, else the most common passthrough reason. */
function nothingToQuantize(path: string, steps: readonly Step[], fallbacks: readonly PassthroughStep[]): KquantError {
  const nothing = "nothing to quantize, nothing written";
  const [first] = fallbacks;
  if (first) {
    return new KquantError({ file: path, tensor: first.source.name, what: `${nothing}; it${fallbacks.length > 1 ? ` and ${fallbacks.length - 1} other(s)` : ""} ${first.reason}` });
  }
  const counts = new Map<string, number>();
  for (const s of steps) if (s.kind === "passthrough") counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  const [reason, n] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? ["the input holds no tensor", 0];
  return new KquantError({
    file: path,
    what: `${nothing}; ${n > 0 ? `${n} of ${steps.length} tensors: ` : ""}${reason}`,
    hint: "kquant inspect lists the names",
  });
}

/** The step for one tensor, or why the spec cannot apply to it. */
function planQuantize(t: TensorInfo, spec: QuantSpec, origin: string, layout: Layout): QuantizeStep | string {
  const rank = t.shape.length;
  const axis = spec.axis === null ? null : canonicalAxis(spec.axis, rank);
  if (axis === undefined) return `axis ${spec.axis} is out of range for shape [${t.shape}]`;
  let packAxis: number | undefined;
  const mode = modeNamed(spec.mode);
  const problem = mode.shapeProblem?.(t.shape, axis) ?? null;
  if (problem !== null) return problem;
  if (mode.packed) {
    packAxis = canonicalAxis(spec.packAxis ?? axis ?? -1, rank);
    if (packAxis === undefined) return `pack axis ${spec.packAxis} is out of range for shape [${t.shape}]`;
  }
  const canonical: QuantSpec = { ...spec, axis, ...(packAxis !== undefined ? { packAxis } : {}) };
  const stored = storedTensors(storedNamesOf(t.name), t.shape, canonical);
  const written = layout.written(t, canonical, stored);
  for (const o of written) byteLengthOf(o.dtype, o.shape); // throws on a shape the format cannot hold
  return { kind: "quantize", source: t, spec: canonical, origin, stored, written };
}
