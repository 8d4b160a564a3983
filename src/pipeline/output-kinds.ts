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

export const OUTPUT_KINDS: Record<WritingCommand, readonly OutputKind[]> = {
  quantize: [
    { extension: ".safetensors", format: "safetensors" },
    { extension: ".safetensors.index.json", format: "sharded-safetensors" },
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
  dequantize: {
    ".safetensors.index.json": "dequantize writes one file, whatever the input's shards",
  },
};

/** Every extension some command writes, longest first: `.safetensors.index.json` is not `.json`. */
const KNOWN = [...new Set(Object.values(OUTPUT_KINDS).flatMap((kinds) => kinds.map((k) => k.extension)))].sort((a, b) => b.length - a.length);

/** The extension of `name`: a known one if it ends so (longest first), else from its last dot ("" if none). */
function extensionOf(name: string): string {
  const lower = name.toLowerCase();
  const known = KNOWN.find((e) => lower.endsWith(e));
  if (known !== undefined) return known;
  const dot = lower.lastIndexOf(".");
  return dot > 0 ? lower.slice(dot) : "";
}

/** The kind `output` names for `command`, or a KquantError (exit 2) naming its extension and the allowed ones. */
export function outputKindOf(command: WritingCommand, output: string): OutputKind {
  const extension = extensionOf(basename(output));
  const kinds = OUTPUT_KINDS[command];
  const kind = kinds.find((k) => k.extension === extension);
  if (kind !== undefined) return kind;
  const allowed = kinds.map((k) => k.extension).join(" or ");
  const why = REFUSALS[command]?.[extension];
  const given = extension === "" ? "a name without an extension" : extension;
  throw new KquantError(`${output}: ${command} writes ${allowed}, not ${given}${why ? ` (${why})` : ""}`);
}
