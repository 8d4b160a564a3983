/** Rules from command-line flags: --int8 / --int4 / --float8 with --axis, --include, --exclude. */
import { KquantError } from "../errors.js";
import type { Rule } from "./rules.js";
import { modeNamed, modeOfFlag } from "../modes/registry.js";
import type { QuantSpec } from "./spec.js";
import { specProblem, type SpecField } from "./spec-check.js";

export interface QuantFlags {
  /** The mode flag given (a descriptor's `flag`: int8, int4, float8). */
  mode: string;
  /** --float8's format (a descriptor's `formats`: e4m3, e5m2, float8_e5m2, …). */
  float8Kind?: string;
  axis?: number;
  perTensor?: boolean;
  packAxis?: number;
  blockSize?: number;
  valueRange?: [number, number];
  epsilon?: number;
  margin?: number;
  include?: string[];
  exclude?: string[];
}

/**
 * The spec the flags ask for. `int8Groups`: the output layout stores int8 in groups (MLX), so
 * --block-size with --int8 is its group size (kquant's int8 values and scales do not change).
 */
export function specFromFlags(f: QuantFlags, int8Groups = false): QuantSpec {
  const mode = modeOfFlag(f.mode, { ...(f.float8Kind !== undefined ? { format: f.float8Kind } : {}), blockSize: f.blockSize !== undefined });
  const d = modeNamed(mode);

  const refuse = (flag: string, what: string) => {
    throw new KquantError({ file: flag, what, hint: "see kquant quantize --help" });
  };
  // A layout that groups int8 itself (MLX) takes --block-size as its group size.
  const groups = d.grouped || (int8Groups && d.kind === "int" && !d.packed);
  if (f.blockSize !== undefined && !groups) refuse(`--block-size ${f.blockSize}`, "applies to --int4 only");
  if (f.perTensor && f.axis !== undefined) refuse(`--axis ${f.axis}`, "--axis and --per-tensor exclude each other");
  if (f.packAxis !== undefined && !d.packed) refuse(`--pack-axis ${f.packAxis}`, "applies to --int4 only");
  if (f.margin !== undefined && d.kind !== "float") refuse(`--margin ${f.margin}`, "applies to --float8 only");
  if (f.valueRange !== undefined && d.kind !== "int") refuse(`--value-range ${f.valueRange.join(",")}`, "does not apply to --float8");

  const defaults = d.defaults();
  const spec: QuantSpec = {
    ...defaults,
    axis: f.perTensor ? null : (f.axis ?? defaults.axis),
    ...(f.packAxis !== undefined ? { packAxis: f.packAxis } : {}),
    ...(f.blockSize !== undefined ? { blockSize: f.blockSize } : {}),
    ...(f.valueRange !== undefined ? { valueRange: f.valueRange } : {}),
    ...(f.epsilon !== undefined ? { epsilon: f.epsilon } : {}),
    ...(f.margin !== undefined ? { margin: f.margin } : {}),
  };
  const problem = specProblem(spec);
  if (problem) refuse(`${FLAG_OF[problem.field]} ${flagValue(f, problem.field)}`, problem.what);
  return spec;
}

const FLAG_OF: Record<SpecField, string> = { blockSize: "--block-size", valueRange: "--value-range", epsilon: "--epsilon", margin: "--margin" };

function flagValue(f: QuantFlags, field: SpecField): string {
  const v = f[field];
  return Array.isArray(v) ? v.join(",") : String(v);
}

/** --exclude first (skip), then --include (or every name), all with the flags' spec. */
export function rulesFromFlags(f: QuantFlags, int8Groups = false): Rule[] {
  const spec = specFromFlags(f, int8Groups);
  const rules: Rule[] = [];
  if (f.exclude?.length) {
    rules.push({ patterns: f.exclude, action: { kind: "skip" }, origin: "--exclude", minRank: 0 });
  }
  const flag = `--${f.mode}`;
  if (f.include?.length) {
    rules.push({ patterns: f.include, action: { kind: "quantize", spec }, origin: `${flag} --include`, minRank: 2 });
  } else {
    rules.push({ patterns: ["*"], action: { kind: "quantize", spec }, origin: flag, minRank: 2, catchAll: true });
  }
  return rules;
}
