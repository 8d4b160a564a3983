/**
 * llm-compressor's preset schemes as `kquant quantize --scheme NAME` takes them: one descriptor per
 * data-free preset (model_free_ptq runs it without calibration data), with the compressed-tensors
 * format it writes and the tensors it stores per Linear weight (role → dtype). The arithmetic stays
 * in src/quant/llmc (presets.ts, linear.ts); the names kquant refuses are answered here in one line.
 */
import { KquantError } from "../errors.js";
import type { StDType } from "../formats/types.js";
import { formatOf, LLMC_PRESETS, type LlmcFormat, type LlmcPreset } from "../quant/llmc/presets.js";

/** What one stored tensor of a scheme holds: its suffix after the module name, and its dtype ("T": the weight's own). */
export interface SchemeStoredTensor {
  suffix: string;
  dtype: StDType | "T";
  /** What the bytes are: codes (possibly packed), scales, a global scale, a zero point, the weight's shape. */
  role: "codes" | "packed-codes" | "scale" | "e8m0-scale" | "fp8-scale" | "global-scale" | "packed-zero-point" | "shape";
}

/** A --scheme: the preset, the format it writes and the tensors of each quantized `M.weight`. */
export interface SchemeDescriptor {
  /** The preset's name (upper case, as PRESET_SCHEMES spells it). */
  readonly name: string;
  readonly preset: LlmcPreset;
  readonly format: LlmcFormat;
  /** The stored tensors of one quantized `M.weight`, in the kernel's order. */
  readonly stored: readonly SchemeStoredTensor[];
}

/** The data-free preset to use instead of one that needs calibration data. */
const CLOSEST: Readonly<Record<string, string>> = { FP8: "FP8_DYNAMIC", NVFP4: "NVFP4A16" };

function storedOf(p: LlmcPreset, format: LlmcFormat): SchemeStoredTensor[] {
  const w = p.weights!;
  switch (format) {
    case "pack-quantized":
      return [
        { suffix: "weight_packed", dtype: "I32", role: "packed-codes" },
        { suffix: "weight_scale", dtype: "T", role: "scale" },
        { suffix: "weight_shape", dtype: "I64", role: "shape" },
        ...(w.symmetric ? [] : [{ suffix: "weight_zero_point", dtype: "I32", role: "packed-zero-point" } as const]),
      ];
    case "int-quantized":
      return [{ suffix: "weight", dtype: "I8", role: "codes" }, { suffix: "weight_scale", dtype: "T", role: "scale" }];
    case "float-quantized":
      return [{ suffix: "weight", dtype: "F8_E4M3", role: "codes" }, { suffix: "weight_scale", dtype: "T", role: "scale" }];
    case "nvfp4-pack-quantized":
      return [
        { suffix: "weight_global_scale", dtype: "F32", role: "global-scale" },
        { suffix: "weight_packed", dtype: "U8", role: "packed-codes" },
        { suffix: "weight_scale", dtype: "F8_E4M3", role: "fp8-scale" },
      ];
    case "mxfp4-pack-quantized":
      return [{ suffix: "weight_packed", dtype: "U8", role: "packed-codes" }, { suffix: "weight_scale", dtype: "U8", role: "e8m0-scale" }];
    case "mxfp8-quantized":
      return [{ suffix: "weight", dtype: "F8_E4M3", role: "codes" }, { suffix: "weight_scale", dtype: "U8", role: "e8m0-scale" }];
    default:
      throw new KquantError(`llm-compressor scheme ${p.name}: format ${format} is not one kquant writes`);
  }
}

/** Every data-free preset's descriptor, in PRESET_SCHEMES' order. */
const SCHEMES: readonly SchemeDescriptor[] = LLMC_PRESETS.filter((p) => p.refusal === null).map((preset) => {
  const format = formatOf(preset);
  return Object.freeze({ name: preset.name, preset, format, stored: Object.freeze(storedOf(preset, format)) });
});

/** The names --scheme takes (any case), in PRESET_SCHEMES' order. */
export const SCHEME_NAMES: readonly string[] = SCHEMES.map((s) => s.name);

/**
 * The descriptor of --scheme `name` (any case). Refused in one line: an unknown name (listing the
 * known ones), a preset that needs calibration data (naming the closest data-free one), UNQUANTIZED.
 */
export function schemeNamed(name: string): SchemeDescriptor {
  const upper = name.toUpperCase();
  const found = SCHEMES.find((s) => s.name === upper);
  if (found !== undefined) return found;
  const option = `--scheme ${name}`;
  const preset = LLMC_PRESETS.find((p) => p.name === upper);
  if (preset === undefined) throw new KquantError({ file: option, what: "unknown scheme", hint: `known: ${schemeList()}` });
  const closest = CLOSEST[upper];
  if (closest !== undefined) {
    throw new KquantError({ file: option, what: "its static activation scales need calibration data", hint: `the closest data-free scheme is ${closest}` });
  }
  throw new KquantError({ file: option, what: preset.refusal! });
}

/** SCHEME_NAMES in one short line: the WxAy presets as ranges per activation width (W2…W7A8), then the others. */
export function schemeList(): string {
  const byA = new Map<string, number[]>();
  const rest: string[] = [];
  for (const n of SCHEME_NAMES) {
    const m = /^W(\d)A(\d+)$/.exec(n);
    if (m === null) rest.push(n);
    else byA.set(m[2]!, [...(byA.get(m[2]!) ?? []), Number(m[1])]);
  }
  const ranges = [...byA].sort(([a], [b]) => Number(a) - Number(b)).map(([a, unsorted]) => {
    const ws = unsorted.sort((x, y) => x - y);
    const contiguous = ws.every((w, i) => i === 0 || w === ws[i - 1]! + 1);
    return ws.length > 2 && contiguous ? `W${ws[0]}…W${ws.at(-1)}A${a}` : ws.map((w) => `W${w}A${a}`).join(", ");
  });
  return [...ranges, ...rest].join(", ");
}
