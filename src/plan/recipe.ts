/**
 * Recipe files: ordered rules in JSON, first match wins.
 *
 *   { "rules": [
 *       { "match": "lm_head.weight", "skip": true },
 *       { "match": ["*.mlp.*"], "mode": "int4", "block_size": 128, "axis": 0 },
 *       { "match": "*.self_attn.*", "keras": <what keras.quantizers.serialize writes> },
 *       { "match": "*", "mode": "float8_e5m2" } ] }
 *
 * A rule's options are the CLI's, snake_case. A `keras` rule takes an AbsMaxQuantizer's axis,
 * value_range and epsilon (stored as int8, or packed int4 with "mode": "int4").
 */
import { KquantError } from "../errors.js";
import { parseJson } from "../formats/json-syntax.js";
import { deserialize } from "../quant/quantizer.js";
import type { Rule } from "./rules.js";
import { allModes, isMode, modeFlags, modeNamed, modeOfFlag, MODES } from "../modes/registry.js";
import type { QuantSpec } from "./spec.js";
import { specProblem, type SpecField } from "./spec-check.js";

const RECIPE_KEY_OF: Record<SpecField, string> = { blockSize: "block_size", valueRange: "value_range", epsilon: "epsilon", margin: "margin" };

const RULE_KEYS = new Set([
  "match",
  "skip",
  "mode",
  "axis",
  "pack_axis",
  "block_size",
  "value_range",
  "epsilon",
  "margin",
  "keras",
]);

export function parseRecipe(file: string, text: string): Rule[] {
  let doc: unknown;
  try {
    doc = parseJson(text);
  } catch (e) {
    throw new KquantError({ file, what: `recipe is not valid JSON (${(e as Error).message})` });
  }
  const rules = (doc as { rules?: unknown })?.rules;
  if (!Array.isArray(rules)) throw new KquantError({ file, what: "recipe needs a \"rules\" array" });
  return rules.map((raw, i) => parseRule(file, i + 1, raw));
}

function parseRule(file: string, n: number, raw: unknown): Rule {
  const fail = (what: string): never => {
    throw new KquantError({ file, what: `rule ${n}: ${what}` });
  };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("is not an object");
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!RULE_KEYS.has(k)) fail(`unknown key "${k}"`);

  const match = typeof r.match === "string" ? [r.match] : r.match;
  if (!Array.isArray(match) || match.length === 0 || !match.every((m) => typeof m === "string")) {
    fail(`"match" must be a pattern or a list of patterns`);
  }
  const base = { patterns: match as string[], origin: `recipe rule ${n}`, minRank: 1 };
  if (r.skip === true) {
    if (Object.keys(r).some((k) => k !== "match" && k !== "skip")) fail(`a "skip" rule takes no options`);
    return { ...base, action: { kind: "skip" } };
  }
  return { ...base, action: { kind: "quantize", spec: ruleSpec(r, fail) } };
}

/**
 * The mode a recipe's "mode" names: a mode (int4 with a block_size is its grouped variant) or a
 * quantize flag (float8: its default format); undefined for anything else.
 */
function recipeMode(named: unknown, blockSize: boolean): string | undefined {
  if (typeof named !== "string") return undefined;
  if (isMode(named)) {
    const next = modeNamed(named).withBlockSize;
    return blockSize && next !== undefined ? next : named;
  }
  return modeFlags().includes(named) ? modeOfFlag(named) : undefined;
}

/** The modes a Keras AbsMaxQuantizer can describe: "int8 or int4". */
const allAbsMax = (): string => allModes().filter((m) => m.absMaxQuantizer).map((m) => m.name).join(" or ");

function ruleSpec(r: Record<string, unknown>, fail: (what: string) => never): QuantSpec {
  const int = (k: string): number | undefined => {
    if (r[k] === undefined) return undefined;
    if (!Number.isInteger(r[k])) fail(`"${k}" must be an integer`);
    return r[k] as number;
  };
  const named = r.mode === undefined ? (r.keras !== undefined ? "int8" : undefined) : r.mode;
  const mode = recipeMode(named, r.block_size !== undefined);
  if (mode === undefined) {
    fail(`"mode" must be one of ${MODES.join(", ")}, ${modeFlags().filter((f) => !isMode(f)).join(", ")} (or give "keras" or "skip")`);
  }
  const d = modeNamed(mode);
  let spec: QuantSpec = d.defaults();

  if (r.keras !== undefined) {
    if (!d.absMaxQuantizer) fail(`a "keras" quantizer is stored as ${allAbsMax()}, not ${mode}`);
    let config: Record<string, unknown>;
    try {
      config = deserialize(r.keras as never).getConfig() as Record<string, unknown>;
    } catch (e) {
      return fail(`"keras": ${(e as Error).message}`);
    }
    if (config.output_dtype !== undefined && config.output_dtype !== "int8") {
      fail(`"keras": output_dtype ${String(config.output_dtype)} is not supported (int8 only)`);
    }
    const axis = config.axis as number[] | undefined;
    if (axis && axis.length !== 1) fail(`"keras": one axis is supported, got [${axis}]`);
    spec = {
      ...spec,
      ...(axis ? { axis: axis[0] } : {}),
      valueRange: config.value_range as [number, number],
      epsilon: config.epsilon as number,
    };
  }

  if (r.axis !== undefined) {
    if (r.axis !== null && !Number.isInteger(r.axis)) fail(`"axis" must be an integer or null`);
    spec.axis = r.axis as number | null;
  }
  const packAxis = int("pack_axis");
  const blockSize = int("block_size");
  const margin = int("margin");
  if (packAxis !== undefined) spec.packAxis = packAxis;
  if (blockSize !== undefined) spec.blockSize = blockSize;
  if (margin !== undefined) spec.margin = margin;
  if (r.value_range !== undefined) {
    const v = r.value_range;
    if (!Array.isArray(v) || v.length !== 2 || !v.every(Number.isInteger) || v[0] >= v[1]) {
      fail(`"value_range" must be two increasing integers`);
    }
    spec.valueRange = v as [number, number];
  }
  if (r.epsilon !== undefined) {
    if (typeof r.epsilon !== "number" || !(r.epsilon >= 0)) fail(`"epsilon" must be a non-negative number`);
    spec.epsilon = r.epsilon as number;
  }
  const problem = specProblem(spec);
  if (problem) fail(`"${RECIPE_KEY_OF[problem.field]}": ${problem.what}`);
  return spec;
}
