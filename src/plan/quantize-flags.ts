/**
 * `kquant quantize`'s mode flags (and a parsed recipe) as the pipeline's job: rules, the tag that
 * names the default output, and the options the manifest records. One home for the CLI
 * (src/cli/quantize.ts) and the page (web/), so the same choices give the same bytes. The mode
 * flags are the registered modes' (src/modes/registry.ts).
 */
import { KquantError } from "../errors.js";
import type { Layout } from "../layouts/layout.js";
import { formatName, modeFlags } from "../modes/registry.js";
import { DEFAULT_BACKEND, type KerasBackend } from "../quant/backend.js";
import { snakeKeys } from "../units.js";
import { rulesFromFlags, specFromFlags, type QuantFlags } from "./from-flags.js";
import type { Rule } from "./rules.js";
import { tagOfRecipe, tagOfSpec } from "./tag.js";

/**
 * The quantization choices of a quantize command, as commander parses them: each registered mode
 * flag (`int8`, `int4`, `float8`, …) given as true or as its format (`float8: "e5m2"`), and the
 * options they share.
 */
export interface ModeOptions extends Omit<QuantFlags, "mode" | "float8Kind"> {
  int8?: boolean;
  int4?: boolean;
  float8?: string | boolean;
  layout?: Layout;
  kerasBackend: KerasBackend;
}

/** A recipe file's rules (src/plan/recipe.ts parseRecipe) and its file name, which names the output. */
export interface ParsedRecipe {
  fileName: string;
  rules: Rule[];
}

/** What a quantize job takes from the options: rules (recipe first, then the flags'), the output tag, the manifest's options. */
export interface JobRules {
  rules: Rule[];
  tag: string;
  options: Record<string, unknown>;
}

/** The job's rules, tag and recorded options from `opts` and an optional recipe; throws a KquantError for no mode or more than one. */
export function jobRulesOf(opts: ModeOptions, recipe?: ParsedRecipe): JobRules {
  const given = (flag: string): unknown => (opts as unknown as Record<string, unknown>)[flag];
  const flagNames = modeFlags().map((f) => `--${f}`).join(", ");
  const modes = modeFlags().filter((f) => given(f) !== undefined && given(f) !== false);
  if (modes.length > 1) throw new KquantError({ what: `${modes.map((m) => `--${m}`).join(" ")}: more than one mode`, hint: `choose one of ${flagNames}` });
  const mode = modes[0];
  if (!mode && !recipe) throw new KquantError({ what: "no mode given", hint: `choose ${flagNames} or --recipe FILE; see kquant quantize --help` });

  const flags: QuantFlags | undefined =
    mode === undefined
      ? undefined
      : {
          mode,
          ...(typeof given(mode) === "string" ? { float8Kind: formatName(mode, given(mode) as string)! } : {}),
          ...pick(opts, ["axis", "perTensor", "packAxis", "blockSize", "valueRange", "epsilon", "margin", "include", "exclude"]),
        };
  const rules: Rule[] = [...(recipe?.rules ?? [])];
  if (flags) rules.push(...rulesFromFlags(flags, !!opts.layout?.int8Groups));
  // The backend applies to every quantize rule, the recipe's too.
  const backend = opts.kerasBackend;
  const withBackend = rules.map((r) => (r.action.kind === "quantize" ? { ...r, action: { ...r.action, spec: { ...r.action.spec, backend } } } : r));
  const extras = { ...(opts.layout ? { layout: opts.layout.name } : {}), ...(backend !== DEFAULT_BACKEND ? { backend } : {}) };
  const flagsTag = flags && tagOfSpec(specFromFlags(flags, !!opts.layout?.int8Groups), { ...extras, ...pick(flags, ["include", "exclude"]) });
  const tag = recipe ? [tagOfRecipe(recipe.fileName.replace(/\.json$/i, ""), extras), flagsTag].filter(Boolean).join("-") : flagsTag!;
  const options = snakeKeys({ ...(flags ?? {}), ...(recipe ? { recipe: recipe.rules.length } : {}), kerasBackend: backend });
  return { rules: withBackend, tag, options };
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
