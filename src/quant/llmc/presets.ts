/**
 * compressed-tensors 0.19.0's preset schemes (quantization/quant_scheme.py PRESET_SCHEMES), the
 * names llm-compressor's model_free_ptq takes as `scheme=` (case-insensitive), with the
 * QuantizationArgs of their weights and input activations as the reference defines them, and the
 * compression format it infers for a Linear weight (compressors/format.py's priority order).
 */
import { KquantError } from "../../errors.js";

/** QuantizationArgs' fields that decide the bytes (the rest are defaults in every preset). */
export interface LlmcArgs {
  numBits: number;
  type: "int" | "float";
  symmetric: boolean;
  strategy: "tensor" | "channel" | "group" | "tensor_group" | "block" | "token";
  groupSize: number | null;
  blockStructure: [number, number] | null;
  /** true, false, or "local" (NVFP4's activations). */
  dynamic: boolean | "local";
  /** torch dtype name of the scale where the scheme fixes it ("float8_e4m3fn", "uint8"). */
  scaleDtype: "float8_e4m3fn" | "uint8" | null;
  observer: string | null;
}

/** A compressed-tensors format a Linear weight is written in. */
export type LlmcFormat =
  | "pack-quantized"
  | "int-quantized"
  | "float-quantized"
  | "nvfp4-pack-quantized"
  | "mxfp4-pack-quantized"
  | "mxfp8-quantized"
  | "naive-quantized";

/** One preset: its weights' and input activations' args, and the format model_free_ptq writes. */
export interface LlmcPreset {
  name: string;
  weights: LlmcArgs | null;
  inputActivations: LlmcArgs | null;
  /** Why model_free_ptq refuses the preset (validate.py), or null when it runs without data. */
  refusal: string | null;
}

function args(a: Partial<LlmcArgs> & Pick<LlmcArgs, "numBits" | "type" | "strategy">): LlmcArgs {
  return { symmetric: true, groupSize: null, blockStructure: null, dynamic: false, scaleDtype: null, observer: null, ...a };
}

const intGroup = (bits: number): LlmcArgs => args({ numBits: bits, type: "int", strategy: "group", groupSize: 128 });
const intToken = (bits: number): LlmcArgs => args({ numBits: bits, type: "int", strategy: "token", dynamic: true });
const fp4Group16 = (dynamic: boolean | "local", observer: string | null = null): LlmcArgs =>
  args({ numBits: 4, type: "float", strategy: "tensor_group", groupSize: 16, dynamic, scaleDtype: "float8_e4m3fn", observer });
const mx = (bits: number, dynamic: boolean): LlmcArgs =>
  args({ numBits: bits, type: "float", strategy: "group", groupSize: 32, dynamic, scaleDtype: "uint8" });

const ACTIVATIONS = "Model Free PTQ cannot calibrate activations. Please use `oneshot` instead.";

function wxay(w: number, a: number): [string, LlmcArgs, LlmcArgs | null] {
  return [`W${w}A${a}`, intGroup(w), a < 16 ? intToken(a) : null];
}

const TABLE: [string, LlmcArgs | null, LlmcArgs | null][] = [
  ["UNQUANTIZED", null, null],
  ["W4A16_ASYM", { ...intGroup(4), symmetric: false }, null],
  ["W8A8", args({ numBits: 8, type: "int", strategy: "channel" }), intToken(8)],
  ["INT8", args({ numBits: 8, type: "int", strategy: "channel" }), intToken(8)],
  ["W4AFP8", intGroup(4), args({ numBits: 8, type: "float", strategy: "token", dynamic: true })],
  ["FP8", args({ numBits: 8, type: "float", strategy: "tensor" }), args({ numBits: 8, type: "float", strategy: "tensor", observer: "static_minmax" })],
  ["FP8_DYNAMIC", args({ numBits: 8, type: "float", strategy: "channel" }), args({ numBits: 8, type: "float", strategy: "token", dynamic: true })],
  ["FP8_BLOCK", args({ numBits: 8, type: "float", strategy: "block", blockStructure: [128, 128] }), args({ numBits: 8, type: "float", strategy: "group", groupSize: 128, dynamic: true })],
  ["NVFP4A16", fp4Group16(false), null],
  ["NVFP4", fp4Group16(false), fp4Group16("local", "static_minmax")],
  ["MXFP4A16", mx(4, false), null],
  ["MXFP4", mx(4, false), mx(4, true)],
  ["MXFP8A16", mx(8, false), null],
  ["MXFP8", mx(8, false), mx(8, true)],
  wxay(2, 4), wxay(2, 8), wxay(2, 16), wxay(3, 4), wxay(3, 8), wxay(3, 16), wxay(4, 4), wxay(4, 8), wxay(4, 16),
  wxay(5, 8), wxay(5, 16), wxay(6, 8), wxay(6, 16), wxay(7, 8), wxay(7, 16), wxay(8, 16),
];

function refusalOf(weights: LlmcArgs | null, inputs: LlmcArgs | null): string | null {
  if (weights === null) return "Must provide a weights quantization scheme to perform weights-only PTQ";
  if (inputs !== null && inputs.dynamic !== true) return ACTIVATIONS;
  return null;
}

/** Every preset, in PRESET_SCHEMES' order. */
export const LLMC_PRESETS: readonly LlmcPreset[] = Object.freeze(
  TABLE.map(([name, weights, inputActivations]) => Object.freeze({ name, weights, inputActivations, refusal: refusalOf(weights, inputActivations) })),
);

/** The preset named `name` (any case, as preset_name_to_scheme upper-cases it). */
export function llmcPreset(name: string): LlmcPreset {
  const p = LLMC_PRESETS.find((q) => q.name === name.toUpperCase());
  if (p === undefined) {
    throw new KquantError(`unknown llm-compressor scheme ${name} (one of ${LLMC_PRESETS.map((q) => q.name).join(", ")})`);
  }
  return p;
}

/**
 * infer_module_format for a Linear: the first of mxfp4-pack, mxfp8, nvfp4-pack, int-quantized,
 * pack-quantized, float-quantized, naive-quantized whose can_compress accepts the scheme.
 */
export function formatOf(p: LlmcPreset): LlmcFormat {
  const w = p.weights;
  if (w === null) throw new KquantError(`llm-compressor scheme ${p.name} quantizes no weights`);
  const a = p.inputActivations;
  if (w.type === "float" && w.numBits === 4 && w.groupSize === 32) return "mxfp4-pack-quantized";
  if (w.type === "float" && w.numBits === 8 && w.groupSize === 32 && w.scaleDtype === "uint8") return "mxfp8-quantized";
  if (w.type === "float" && w.numBits === 4 && w.groupSize === 16) return "nvfp4-pack-quantized";
  if (a !== null && w.type === "int") return "int-quantized";
  if ((a === null || a.type !== "float") && w.type === "int" && w.numBits >= 1 && w.numBits <= 8) return "pack-quantized";
  if (a !== null && w.type === "float") return "float-quantized";
  return "naive-quantized";
}
