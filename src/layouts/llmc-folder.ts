/**
 * The folder model_free_ptq (llm-compressor 0.14.0.1) writes, as far as it is not arithmetic:
 * which output shard holds which source tensor's outputs, the order safetensors' save_file puts
 * tensors in, the index (always written, `total_size` = the sum of the tensors' bytes) and
 * config.json (re-dumped with indent=2, sort_keys=True, formats/python-json.ts). No I/O here: pipeline/quantize/scheme-run.ts
 * reads and writes.
 */
import { KquantError } from "../errors.js";
import { ST_DTYPES } from "../formats/dtypes.js";
import type { StDType } from "../formats/types.js";
import { parsePythonJson, pythonJson } from "../formats/python-json.js";

/**
 * llm-compressor's DEFAULT_FUSED_MAPPINGS (entrypoints/model_free/microscale.py): a primary weight's
 * pattern and its partners' names. With a TENSOR_GROUP scheme (NVFP4A16) the shard of the primary
 * loads and writes its partners (compressed-tensors build_inverse_weight_maps).
 */
const PARTNERS: readonly [RegExp, (m: Record<string, string>) => string[]][] = [
  [/^(?<prefix>.+?)\.(?<attn>attn|attention|self_attn|self_attention)\.q_proj\.weight$/, (g) => [`${g.prefix}.${g.attn}.k_proj.weight`, `${g.prefix}.${g.attn}.v_proj.weight`]],
  [/^(?<prefix>.+?)\.(?<attn>attn|attention|self_attn)\.wq_a\.weight$/, (g) => [`${g.prefix}.${g.attn}.wkv_a_with_mqa.weight`]],
  [/^(?<prefix>.+?)\.(?<mlp>mlp|feed_forward)\.gate_proj\.weight$/, (g) => [`${g.prefix}.${g.mlp}.up_proj.weight`]],
  [/^(?<prefix>.+?)\.w1\.weight$/, (g) => [`${g.prefix}.w3.weight`]],
];

/** The partner names of `name` (empty when it is no primary). */
function partnersOf(name: string): string[] {
  return PARTNERS.flatMap(([re, names]) => {
    const m = re.exec(name);
    return m === null ? [] : names(m.groups as Record<string, string>);
  });
}

/**
 * The source tensors each output shard is written from, shard by shard in the order of `shards`:
 * every tensor goes to its own shard, except that with `tensorGroup` a primary's partners go to
 * the primary's shard. `weightMap` is [tensor, shard] in index order. A partner missing from the
 * checkpoint is refused as the reference refuses it.
 */
export function llmcShardSources(weightMap: readonly (readonly [string, string])[], shards: readonly string[], tensorGroup: boolean): Map<string, string[]> {
  const shardOf = new Map(weightMap);
  const deps = new Map<string, string[]>();
  if (tensorGroup) {
    for (const [name] of weightMap) {
      const p = partnersOf(name);
      if (p.length === 0) continue;
      for (const d of p) {
        if (!shardOf.has(d)) throw new KquantError({ tensor: name, what: `fused partner ${d} is not in the checkpoint (model_free_ptq refuses: dependency weight not found in weight map)` });
      }
      deps.set(name, p);
    }
  }
  const partners = new Set([...deps.values()].flat());
  const out = new Map<string, string[]>(shards.map((s) => [s, []]));
  for (const [name, shard] of weightMap) {
    if (partners.has(name)) continue;
    out.get(shard)!.push(name, ...(deps.get(name) ?? []));
  }
  return out;
}

/** split_fused_moe_experts' keys: a fused 3-D tensor's name part and the per-expert names it becomes. */
const FUSED_EXPERTS: readonly (readonly [string, readonly string[]])[] = [
  ["gate_up_proj", ["gate_proj", "up_proj"]],
  ["down_proj", ["down_proj"]],
];

/** One 2-D weight cut out of a fused 3-D expert tensor: the bytes [byteOffset, byteOffset + byteLength) of `from`. */
export interface LlmcExpertPart {
  name: string;
  shape: [number, number];
  from: string;
  byteOffset: number;
  byteLength: number;
}

/**
 * llm-compressor's split_fused_moe_experts (entrypoints/model_free/converter.py), which the
 * converter runs on every shard before anything else: a 3-D tensor [experts, rows, cols] whose
 * name contains `gate_up_proj` becomes, for each expert e, `gate_proj` and `up_proj` weights
 * [rows/2, cols] (the first and second half of its rows), one containing `down_proj` becomes
 * `down_proj` weights [rows, cols]; the key is the name with every occurrence of the part replaced
 * by `{e}.{new part}`, `.weight` appended unless it ends so. Returns, in order, each tensor as it
 * is (null) or its parts. Refused as the reference refuses: a name containing both parts (whatever
 * its rank), a gate_up_proj whose rows do not halve.
 */
export function llmcExpertParts(tensors: readonly { name: string; shape: readonly number[]; byteLength: number }[]): (LlmcExpertPart[] | null)[] {
  return tensors.map((t) => {
    const keys = FUSED_EXPERTS.filter(([key]) => t.name.includes(key));
    if (keys.length >= 2) throw new KquantError({ tensor: t.name, what: `the name holds both ${keys.map(([k]) => k).join(" and ")} (model_free_ptq refuses: found multiple keys matching it)` });
    if (keys.length === 0 || t.shape.length !== 3) return null;
    const [key, parts] = keys[0]!;
    const [experts, dim1, cols] = t.shape as [number, number, number];
    if (dim1 % parts.length !== 0) throw new KquantError({ tensor: t.name, what: `${key} expects a second dimension divisible by ${parts.length} but got shape [${t.shape.join(", ")}] (model_free_ptq refuses)` });
    const rows = dim1 / parts.length;
    const partBytes = experts * dim1 === 0 ? 0 : t.byteLength / (experts * parts.length);
    const out: LlmcExpertPart[] = [];
    for (let e = 0; e < experts; e++) {
      parts.forEach((part, p) => {
        const key2 = t.name.replaceAll(key, `${e}.${part}`);
        out.push({ name: key2.endsWith(".weight") ? key2 : `${key2}.weight`, shape: [rows, cols], from: t.name, byteOffset: (e * parts.length + p) * partBytes, byteLength: partBytes });
      });
    }
    return out;
  });
}

/** The order safetensors' save_file writes tensors in: dtype (its enum) descending, then name. */
export function saveFileOrder<T extends { name: string; dtype: StDType }>(tensors: readonly T[]): T[] {
  const rank = (d: StDType) => ST_DTYPES.indexOf(d);
  return [...tensors].sort((a, b) => rank(b.dtype) - rank(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** model.safetensors.index.json as update_safetensors_index writes it (json.dump, indent=2, sort_keys=True). */
export function llmcIndexText(totalSize: number, weightMap: Readonly<Record<string, string>>): string {
  return pythonJson({ metadata: { total_size: totalSize }, weight_map: weightMap }, { indent: 2, sortKeys: true });
}

/**
 * config.json with `quantization_config` set, as update_config re-dumps what json.load read from
 * `configText` (indent=2, sort_keys=True, numbers as Python writes them, no final newline).
 */
export function llmcConfigText(configText: string, file: string, quantizationConfig: Record<string, unknown>): string {
  const config = parsePythonJson(configText, file) as Record<string, unknown>;
  return pythonJson({ ...config, quantization_config: quantizationConfig }, { indent: 2, sortKeys: true });
}
