/**
 * What each command may write, decided by the output's extension alone: one table, so a file's
 * name always says its format (never safetensors bytes under an .npz name).
 */
import { basename } from "node:path";
import { KquantError } from "../errors.js";

/** A format a command writes, by the extension that selects it (matched case-insensitively). */
export interface OutputKind {
  extension: string;
  format: "safetensors" | "sharded-safetensors" | "npz";
}

/** A command that writes tensors to a path the user names. */
export type WritingCommand = "quantize" | "dequantize";

/** Longest extension first, so `.safetensors.index.json` is not taken for `.json`. */
export const OUTPUT_KINDS: Record<WritingCommand, readonly OutputKind[]> = {
  quantize: [
    { extension: ".safetensors.index.json", format: "sharded-safetensors" },
    { extension: ".safetensors", format: "safetensors" },
  ],
  dequantize: [
    { extension: ".safetensors", format: "safetensors" },
    { extension: ".npz", format: "npz" },
  ],
};

/** Why a command refuses an extension users may reach for, where the list alone does not say. */
const REFUSALS: Partial<Record<WritingCommand, Record<string, string>>> = {
  quantize: {
    ".npz": "an .npz has no place for the scales' layout and the kquant manifest that dequantizing needs",
    ".npy": "a .npy holds one array, and a quantized tensor is stored as values plus scales",
  },
};

/** The kind `output` names for `command`, or a KquantError (exit 2) naming its extension and the allowed ones. */
export function outputKindOf(command: WritingCommand, output: string): OutputKind {
  const lower = output.toLowerCase();
  const kinds = OUTPUT_KINDS[command];
  const kind = kinds.find((k) => lower.endsWith(k.extension));
  if (kind !== undefined) return kind;
  const name = basename(lower);
  const dot = name.lastIndexOf(".");
  const extension = dot > 0 ? name.slice(dot) : "";
  const allowed = kinds.map((k) => k.extension).join(" or ");
  const why = REFUSALS[command]?.[extension];
  const given = extension === "" ? "a name without an extension" : extension;
  throw new KquantError(`${output}: ${command} writes ${allowed}, not ${given}${why ? ` (${why})` : ""}`);
}
