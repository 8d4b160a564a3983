/**
 * Which tensors llm-compressor's model_free_ptq quantizes, and which share NVFP4's global scale,
 * by name alone (compressed-tensors 0.19.0 utils/match.py match_quantizable_tensors and
 * match_name; llm-compressor 0.14.0.1 entrypoints/model_free/microscale.py and helpers.py).
 *
 * A tensor `M.P` is quantized when P is "weight", M does not end with "norm" (the default ignore
 * of norms) and no ignore entry matches M: an entry matches a module name exactly, or, written
 * `re:PATTERN`, when PATTERN matches at the start of it (Python's re.match). Everything else is
 * copied unchanged. With a TENSOR_GROUP scheme (NVFP4A16), q/k/v and gate/up weights that are
 * quantized share one global scale, from the absmax of all of them.
 */
import { KquantError } from "../errors.js";

/** Whether module name `m` is ignored: model_free_ptq's `ignore` list, as match_name reads it. */
export function llmcIgnoreMatcher(ignore: readonly string[]): (module: string) => boolean {
  const exact = new Set(ignore.filter((i) => !i.startsWith("re:")));
  const patterns = ignore.filter((i) => i.startsWith("re:")).map((i) => {
    try {
      return new RegExp(`^(?:${i.slice(3)})`, "u");
    } catch (e) {
      throw new KquantError(`ignore entry ${JSON.stringify(i)}: not a regular expression kquant can run (${(e as Error).message})`);
    }
  });
  return (m) => exact.has(m) || patterns.some((p) => p.test(m));
}

/** The module a tensor name belongs to and its parameter (Python's rpartition(".")). */
export function splitTensorName(name: string): { module: string; param: string } {
  const i = name.lastIndexOf(".");
  return i < 0 ? { module: "", param: name } : { module: name.slice(0, i), param: name.slice(i + 1) };
}

/** The names model_free_ptq quantizes, in the order given. */
export function llmcQuantizable(names: readonly string[], ignored: (module: string) => boolean): string[] {
  return names.filter((n) => {
    const { module, param } = splitTensorName(n);
    return param === "weight" && !module.endsWith("norm") && !ignored(module);
  });
}

/** microscale.py's _DEFAULT_FUSED_MAPPINGS_LIST: the sets of weights that share a global scale. */
const FUSED_MAPPINGS: readonly (readonly RegExp[])[] = [
  [/^.*(attn|attention)\.q_proj\.weight$/, /^.*(attn|attention)\.k_proj\.weight$/, /^.*(attn|attention)\.v_proj\.weight$/],
  [/^.*(attn|attention)\.wq_a\.weight$/, /^.*(attn|attention)\.wkv_a_with_mqa\.weight$/],
  [/^.*mlp\.gate_proj\.weight$/, /^.*mlp\.up_proj\.weight$/],
  [/^.*w1\.weight$/, /^.*w3\.weight$/],
];

/** helpers.py's natural_key: digit runs compare as integers, the rest as strings. */
function naturalCompare(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (i % 2 === 1) {
      const d = Number(BigInt(x) - BigInt(y));
      if (d !== 0) return d < 0 ? -1 : 1;
    } else if (x !== y) return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/**
 * match_names_set_eager over every mapping: the complete fused sets among `names` (in natural
 * order, a set closes as soon as each of its patterns has matched once). Throws as the reference
 * does when a pattern matches twice before its set is complete.
 */
export function llmcFusedSets(names: readonly string[]): string[][] {
  const sorted = [...names].sort(naturalCompare);
  const sets: string[][] = [];
  for (const mapping of FUSED_MAPPINGS) {
    let matches: (string | null)[] = mapping.map(() => null);
    for (const name of sorted) {
      mapping.forEach((re, t) => {
        if (!re.test(name)) return;
        if (matches[t] !== null) {
          throw new KquantError(`model_free_ptq refuses: ${re.source} matched twice before completing a fused set (${matches[t]}, ${name})`);
        }
        matches[t] = name;
      });
      if (matches.every((m) => m !== null)) {
        sets.push(matches as string[]);
        matches = mapping.map(() => null);
      }
    }
  }
  return sets;
}

/** What model_free_ptq does with one tensor of a checkpoint. */
export type LlmcAction =
  | { kind: "copy" }
  | { kind: "quantize"; /** the names whose absmax sets its NVFP4 global scale (itself alone if not fused) */ globalSet: string[] };

/**
 * The action for every tensor name (in the order given) under a scheme whose weights use
 * `tensorGroup` (NVFP4's TENSOR_GROUP strategy: fused sets share a global scale) and `ignore`.
 */
export function llmcActions(names: readonly string[], ignore: readonly string[], tensorGroup: boolean): Map<string, LlmcAction> {
  const quantized = new Set(llmcQuantizable(names, llmcIgnoreMatcher(ignore)));
  const sets = new Map<string, string[]>();
  if (tensorGroup) {
    for (const set of llmcFusedSets(names)) {
      const members = set.filter((n) => quantized.has(n));
      for (const n of members) sets.set(n, members);
    }
  }
  return new Map(names.map((n) => [n, quantized.has(n) ? { kind: "quantize", globalSet: sets.get(n) ?? [n] } : { kind: "copy" }]));
}
