/** Ordered rules, first match wins: each says how to quantize the tensors it matches, or to skip them. */
import { compileGlob, type Glob } from "./glob.js";
import type { QuantSpec } from "./spec.js";

export type RuleAction = { kind: "quantize"; spec: QuantSpec } | { kind: "skip" };

export interface Rule {
  /** Glob patterns on tensor names (any may match). */
  patterns: string[];
  action: RuleAction;
  /** Where the rule came from, for the report and warnings: "--int4", "recipe rule 2", "--exclude". */
  origin: string;
  /**
   * Flag rules only apply to floating tensors of rank >= 2 (biases and norms are left alone);
   * a recipe rule that names a 1-D tensor means it.
   */
  minRank: number;
  /** A catch-all that needs no "matched nothing" warning. */
  catchAll?: boolean;
}

export interface CompiledRule extends Rule {
  globs: Glob[];
}

export function compileRules(rules: readonly Rule[]): CompiledRule[] {
  return rules.map((r) => ({ ...r, globs: r.patterns.map(compileGlob) }));
}

/** The index of the first rule whose pattern matches `name`, or -1. */
export function firstMatch(rules: readonly CompiledRule[], name: string): number {
  return rules.findIndex((r) => r.globs.some((g) => g.test(name)));
}
