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

/**
 * `(name) => index of the first rule whose pattern matches name, or -1`, built once for many names:
 * patterns without `*` or `?` are looked up in one map and only the others are tried, in rule
 * order, so 200,000 literal rules over 150,000 tensors stay linear instead of rules × tensors.
 */
export function ruleMatcher(rules: readonly CompiledRule[]): (name: string) => number {
  const literal = new Map<string, number>();
  const wild: { index: number; glob: Glob }[] = [];
  rules.forEach((r, index) => {
    for (const glob of r.globs) {
      if (/[*?]/.test(glob.pattern)) wild.push({ index, glob });
      else if (!literal.has(glob.pattern)) literal.set(glob.pattern, index);
    }
  });
  return (name) => {
    const exact = literal.get(name) ?? -1;
    for (const w of wild) {
      if (exact !== -1 && w.index >= exact) break;
      if (w.glob.test(name)) return w.index;
    }
    return exact;
  };
}
