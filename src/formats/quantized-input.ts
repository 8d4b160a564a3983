/**
 * Is a checkpoint already quantized? kquant quantizes float weights; its own output, a
 * compressed-tensors or an MLX checkpoint given back to it would be quantized again (the integer
 * codes kept as they are, the float scales quantized). Recognised by what those writers leave:
 * kquant's manifest in `__metadata__`, `quantization_config` (transformers, compressed-tensors) or
 * `quantization` (MLX) in config.json, or an integer or float8 tensor with a scale tensor beside it.
 */
import type { TensorInfo } from "./types.js";

/** dtypes that quantized values are stored in. */
const CODE_DTYPES = new Set(["I8", "U8", "I16", "U16", "I32", "U32", "F8_E4M3", "F8_E5M2"]);

/** The scale tensors the known writers put beside `name` (kquant, compressed-tensors, MLX, FP8 checkpoints). */
function scaleNamesOf(name: string): string[] {
  const dot = name.lastIndexOf(".");
  const module = dot < 0 ? "" : name.slice(0, dot + 1);
  return [`${name}_scale`, `${name}_scale_inv`, `${module}weight_scale`, `${module}weight_scale_inv`, `${module}scales`];
}

/**
 * Why the checkpoint is already quantized, or null. `metadata`: the safetensors `__metadata__`;
 * `config`: a model folder's config.json.
 */
export function alreadyQuantized(tensors: readonly TensorInfo[], metadata: Readonly<Record<string, string>> | null, config: Readonly<Record<string, unknown>> | null): string | null {
  if (metadata !== null && Object.prototype.hasOwnProperty.call(metadata, "kquant")) return "a kquant output (manifest in __metadata__)";
  if (config !== null && Object.prototype.hasOwnProperty.call(config, "quantization_config")) return "config.json has quantization_config";
  if (config !== null && Object.prototype.hasOwnProperty.call(config, "quantization")) return "config.json has quantization (MLX)";
  const names = new Set(tensors.map((t) => t.name));
  for (const t of tensors) {
    if (!CODE_DTYPES.has(t.dtype)) continue;
    const scale = scaleNamesOf(t.name).find((s) => names.has(s));
    if (scale !== undefined) return `${t.dtype} ${JSON.stringify(t.name)} beside scale ${JSON.stringify(scale)}`;
  }
  return null;
}
