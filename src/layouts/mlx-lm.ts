/**
 * `--mlx MODE`: the folder `mlx_lm.convert -q --q-mode MODE` (mlx_lm 0.32.2, mlx 0.32.4) writes,
 * byte for byte (docs/mlx-reference.md "What mlx_lm.convert does around the quantizer"). This module
 * holds mlx_lm's decisions; the arithmetic is src/quant/mlx's and the run pipeline/quantize/mlx-run.ts's.
 *
 * For a weight `X.weight` [rows, cols] it quantizes (groups of g along cols):
 *   X.weight  U32 [rows, cols·bits/32]
 *   X.scales  the dtype [rows, cols/g] (affine), U8 E8M0 (mxfp4, mxfp8) or U8 E4M3 (nvfp4)
 *   X.biases  the dtype [rows, cols/g]   (affine only)
 * Everything else floating is cast to the dtype; config.json gets `quantization` =
 * `quantization_config` = {group_size, bits, mode}.
 */
import { KquantError } from "../errors.js";
import type { StDType } from "../formats/types.js";
import { MLX_MODES, mlxModeNamed, type MlxModeDescriptor } from "../modes/mlx.js";
import type { MlxFloat } from "../quant/mlx/floats.js";
import { pythonJson } from "../formats/python-json.js";

/** The modes `--mlx` takes (mlx_lm's --q-mode), from src/modes/mlx.ts. */
export const MLX_LM_MODES: readonly string[] = MLX_MODES.map((m) => m.name);
/** The dtypes `--dtype` takes (mlx_lm's --dtype). */
export const MLX_LM_DTYPES: readonly MlxFloat[] = ["float32", "float16", "bfloat16"];

/** A conversion's parameters: config.json's `quantization`. */
export interface MlxLmParams {
  group_size: number;
  bits: number;
  mode: string;
}

/** A run's parameters with its mode's descriptor. */
export interface MlxLmRun extends MlxLmParams {
  descriptor: MlxModeDescriptor;
}

/** The parameters alone (config.json's `quantization`), without the descriptor. */
export function paramsOf(run: MlxLmParams): MlxLmParams {
  return { group_size: run.group_size, bits: run.bits, mode: run.mode };
}

/** The parameters of `--mlx MODE [--bits N] [--block-size N]`; a width or group MLX refuses is MLX's rule in one line. */
export function mlxLmParams(mode: string, bits?: number, groupSize?: number): MlxLmRun {
  const descriptor = mlxModeNamed(mode);
  if (descriptor === undefined) throw new KquantError({ file: `--mlx ${mode}`, what: "unknown MLX mode", hint: `choose ${MLX_LM_MODES.join(", ")}` });
  const p = { group_size: groupSize ?? descriptor.defaults.groupSize, bits: bits ?? descriptor.defaults.bits, mode };
  const refusal = descriptor.refusal(p.bits, p.group_size);
  if (refusal !== null) throw new KquantError({ file: `--mlx ${mode}`, what: refusal });
  return { ...p, descriptor };
}

const DTYPE_NAMES: Readonly<Record<string, MlxFloat>> = { float32: "float32", float16: "float16", bfloat16: "bfloat16" };
/** The safetensors dtype of each MLX float. */
export const ST_OF_MLX: Readonly<Record<MlxFloat, StDType>> = { float32: "F32", float16: "F16", bfloat16: "BF16" };
/** The MLX float of a safetensors float dtype, null for any other. */
export function mlxFloatOf(dtype: StDType): MlxFloat | null {
  return dtype === "F32" ? "float32" : dtype === "F16" ? "float16" : dtype === "BF16" ? "bfloat16" : null;
}

/**
 * The dtype every floating tensor is cast to: `--dtype`, else config.json's `torch_dtype`, else
 * `text_config.dtype` (a top-level `dtype` is not read, as in mlx_lm 0.32.2); null keeps each
 * tensor's own. A config dtype MLX does not take is refused naming the key.
 */
export function mlxLmDtype(config: Readonly<Record<string, unknown>>, flag?: string): MlxFloat | null {
  if (flag !== undefined) {
    const d = DTYPE_NAMES[flag];
    if (d === undefined) throw new KquantError({ file: `--dtype ${flag}`, what: "not a dtype mlx_lm converts to", hint: `choose ${MLX_LM_DTYPES.join(", ")}` });
    return d;
  }
  const text = config.text_config as Record<string, unknown> | undefined;
  const [key, value] = config.torch_dtype !== undefined ? ["torch_dtype", config.torch_dtype] : ["text_config.dtype", text?.dtype];
  if (value === undefined || value === null) return null;
  const d = typeof value === "string" ? DTYPE_NAMES[value] : undefined;
  if (d === undefined) throw new KquantError({ file: "config.json", what: `${key} ${JSON.stringify(value)} is not a dtype mlx_lm converts to (${MLX_LM_DTYPES.join(", ")}); give --dtype` });
  return d;
}

/** What mlx_lm does with a source tensor, and why when it does not quantize it (null: it does). */
export interface MlxLmAction {
  action: "drop" | "quantize" | "keep";
  reason: string | null;
}

/**
 * What mlx_lm does with a source tensor: "drop" (Llama's sanitize: `rotary_emb.inv_freq`, and
 * `lm_head.weight` when the embeddings are tied), "quantize" (a 2-D `X.weight`, mlx_lm's Linear and
 * Embedding weights, whose last dimension the group size divides) or "keep" (cast if floating).
 */
export function mlxLmAction(name: string, shape: readonly number[], groupSize: number, config: Readonly<Record<string, unknown>>): MlxLmAction {
  if (name.endsWith("rotary_emb.inv_freq")) return { action: "drop", reason: "dropped: rotary_emb.inv_freq (mlx_lm's sanitize)" };
  if (name === "lm_head.weight" && config.tie_word_embeddings === true) return { action: "drop", reason: "dropped: lm_head tied to the embeddings (mlx_lm's sanitize)" };
  if (!name.endsWith(".weight") || shape.length !== 2) return { action: "keep", reason: "not a 2-D weight (mlx_lm quantizes Linear and Embedding weights)" };
  if (shape[1]! % groupSize !== 0) return { action: "keep", reason: `last dimension ${shape[1]} is not a multiple of the group size ${groupSize} (mlx_lm leaves it float)` };
  return { action: "quantize", reason: null };
}

/**
 * model.safetensors.index.json as mlx_lm's save_model writes it (json.dump, indent=4, keys as
 * inserted, no final newline): `total_size` the written tensors' bytes, `total_parameters`
 * get_total_parameters (a quantized weight counts its float elements, its scales and biases
 * nothing: so the elements of every source tensor kept), the weight map sorted by name.
 */
export function mlxLmIndexText(totalSize: number, totalParameters: number, weightMap: Readonly<Record<string, string>>): string {
  const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return pythonJson({ metadata: { total_size: totalSize, total_parameters: totalParameters }, weight_map: sorted }, { indent: 4 });
}

/**
 * README.md as mlx_lm's create_model_card writes it for a local source folder (no Hub repo:
 * `ModelCard.from_template(ModelCardData(language="en"))` with library_name, pipeline_tag and
 * tags set and an empty text), byte for byte.
 */
export const MLX_LM_MODEL_CARD = "---\nlanguage: en\nlibrary_name: mlx\npipeline_tag: text-generation\ntags:\n- mlx\n---\n";

/**
 * config.json as mlx_lm writes it (its content; mlx_lm also sorts the top-level keys and indents
 * by 4): load_config takes a truthy `eos_token_id` from generation_config.json (`generation`, null
 * when there is none or it is not JSON), save_config drops `_name_or_path` and `vision_config`,
 * and the quantization goes in as `quantization` and `quantization_config`.
 */
export function mlxLmConfig(config: Readonly<Record<string, unknown>>, params: MlxLmParams, generation: unknown = null): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  const eos = generation !== null && typeof generation === "object" && !Array.isArray(generation) ? (generation as Record<string, unknown>).eos_token_id : undefined;
  if (pythonTruthy(eos)) out.eos_token_id = eos;
  delete out._name_or_path;
  delete out.vision_config;
  return { ...out, quantization: paramsOf(params), quantization_config: paramsOf(params) };
}

/** Python's truth of a JSON value (json.load's): null, false, 0, "", [] and {} are false. */
function pythonTruthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

/**
 * An MLX folder's quantization from its config.json (`quantization`, as mlx_lm writes it), or null
 * when it has none. Per-module entries (mlx_lm's mixed quantization) are refused in one line.
 */
export function mlxLmParamsOf(config: Readonly<Record<string, unknown>>, file = "config.json"): MlxLmRun | null {
  const q = config.quantization as Record<string, unknown> | undefined;
  if (q === undefined || q === null || typeof q !== "object") return null;
  const { group_size, bits, mode = "affine", ...rest } = q;
  if (Object.keys(rest).length > 0) throw new KquantError({ file, what: `quantization has per-module entries (${Object.keys(rest)[0]}, …); kquant reads one group size and width per folder` });
  if (typeof mode !== "string" || typeof bits !== "number" || typeof group_size !== "number") throw new KquantError({ file, what: `quantization ${JSON.stringify(q)} is not {group_size, bits, mode}` });
  return mlxLmParams(mode, bits, group_size);
}
