/**
 * The `quantization_config` llm-compressor 0.14.0.1's model_free_ptq writes into config.json
 * (entrypoints/model_free/save_utils.py update_config: QuantizationConfig.model_dump() of one
 * config group named as the scheme was passed, under compressed-tensors' version, quant_method and
 * an empty transform_config). `version` is compressed-tensors' own; the rest is compared as JSON
 * with what the reference writes (test/layouts/llmc-config.test.ts).
 */
import type { LlmcArgs, LlmcPreset } from "../quant/llmc/presets.js";
import { formatOf } from "../quant/llmc/presets.js";

/** compressed-tensors' version model_free_ptq records (the format kquant's --scheme bytes follow). */
export const COMPRESSED_TENSORS_VERSION = "0.19.0";

/** QuantizationArgs.model_dump() of one preset's args (zp_dtype is written for asymmetric args only). */
function argsJson(a: LlmcArgs | null): Record<string, unknown> | null {
  if (a === null) return null;
  return {
    num_bits: a.numBits,
    type: a.type,
    symmetric: a.symmetric,
    group_size: a.groupSize,
    strategy: a.strategy,
    block_structure: a.blockStructure,
    dynamic: a.dynamic,
    actorder: null,
    scale_dtype: a.scaleDtype === null ? null : `torch.${a.scaleDtype}`,
    zp_dtype: a.symmetric ? null : "torch.int8",
    observer: a.observer,
    observer_kwargs: {},
  };
}

/**
 * config.json's `quantization_config` for `preset` under the group name `schemeName` (the
 * --scheme value as given: model_free_ptq keys the group by it), `ignore` as given, and whether any
 * tensor was quantized (if none, the group has no format and the model's format is "dense").
 */
export function llmcQuantizationConfig(preset: LlmcPreset, schemeName: string, ignore: readonly string[], quantizedAny: boolean): Record<string, unknown> {
  const format = quantizedAny ? formatOf(preset) : null;
  return {
    version: COMPRESSED_TENSORS_VERSION,
    quant_method: "compressed-tensors",
    transform_config: {},
    config_groups: {
      [schemeName]: {
        targets: ["Linear"],
        weights: argsJson(preset.weights),
        input_activations: argsJson(preset.inputActivations),
        output_activations: null,
        format,
      },
    },
    kv_cache_scheme: null,
    format: format ?? "dense",
    quantization_status: "compressed",
    global_compression_ratio: null,
    ignore: [...ignore],
  };
}

/** JSON text with object keys sorted, so two documents compare whatever their key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/**
 * The preset a config.json's `quantization_config` was written for by model_free_ptq (or
 * `kquant quantize --scheme`): one config group whose weights, input activations and format are a
 * data-free preset's (the group's name first, when two presets agree: W8A8 and INT8), with the
 * `ignore` list; null when the config is no compressed-tensors one kquant reads back.
 */
export function llmcSchemeOfConfig(config: Readonly<Record<string, unknown>>, presets: readonly LlmcPreset[]): { preset: LlmcPreset; group: string; ignore: string[] } | null {
  const qc = config.quantization_config as Record<string, unknown> | undefined;
  if (qc === null || typeof qc !== "object" || qc.quant_method !== "compressed-tensors") return null;
  const groups = qc.config_groups as Record<string, Record<string, unknown>> | undefined;
  if (groups === null || typeof groups !== "object" || Object.keys(groups).length !== 1) return null;
  const [group, g] = Object.entries(groups)[0]!;
  if (g === null || typeof g !== "object") return null;
  const want = canonical([g.weights, g.input_activations ?? null, g.format]);
  const matches = presets.filter((p) => p.weights !== null && canonical([argsJson(p.weights), argsJson(p.inputActivations), formatOf(p)]) === want);
  const preset = matches.find((p) => p.name === group.toUpperCase()) ?? matches[0];
  if (preset === undefined) return null;
  const ignore = Array.isArray(qc.ignore) ? qc.ignore.filter((x): x is string => typeof x === "string") : [];
  return { preset, group, ignore };
}
