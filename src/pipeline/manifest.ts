/**
 * The manifest: everything needed to read a kquant output back, stored in the safetensors
 * `__metadata__` under "kquant" and beside the output as `<output>.json`.
 */
import type { StDType } from "../formats/types.js";
import type { Step } from "../plan/plan.js";
import { dequantizeFormula, type Mode } from "../plan/spec.js";
import { KERAS_VERSION, VERSION } from "../version.js";
import { DEFAULT_BACKEND, type KerasBackend } from "../quant/backend.js";

export const MANIFEST_KEY = "kquant";
export const MANIFEST_FORMAT = 1;

/** Hashes are fixed-length hex, so a header laid out with this placeholder keeps its size when filled in. */
export const HASH_PLACEHOLDER = "0".repeat(64);

export interface TensorRecord {
  mode: Mode | "passthrough";
  source_dtype: StDType;
  /** The source tensor's shape. */
  shape: number[];
  /** Passthrough: why the tensor was left alone. */
  reason?: string;
  /** Quantized: the rule that chose the mode ("--int4", "recipe rule 2"). */
  rule?: string;
  axis?: number | null;
  pack_axis?: number;
  orig_len?: number;
  block_size?: number;
  value_range?: [number, number];
  epsilon?: number;
  margin?: number;
  /** The Keras backend whose arithmetic the stored bytes reproduce. */
  backend?: KerasBackend;
  /** Names of the stored tensors. */
  values?: string;
  scale?: string;
  zero?: string;
  dequantize?: string;
  /** sha256 (hex) of the source tensor's bytes and of each stored tensor's bytes, by stored name. */
  sha256: { source: string; stored: Record<string, string> };
}

export interface Manifest {
  format: "kquant";
  format_version: number;
  kquant_version: string;
  /** The Keras release the stored bytes match (bit for bit, on `backend`). */
  keras_version?: string;
  /** The options the run was given, as the CLI understood them. */
  options: Record<string, unknown>;
  source: { file: string; metadata: Record<string, string> | null };
  /** In write order. */
  tensors: Record<string, TensorRecord>;
}

/** The record for one step, with placeholder hashes (filled in as the data is written). */
export function recordFor(step: Step): TensorRecord {
  const source = step.source;
  if (step.kind === "passthrough") {
    return {
      mode: "passthrough",
      source_dtype: source.dtype,
      shape: source.shape,
      reason: step.reason,
      sha256: { source: HASH_PLACEHOLDER, stored: { [step.output.name]: HASH_PLACEHOLDER } },
    };
  }
  const { spec } = step;
  const stored = [step.values, step.scale, ...(step.zero ? [step.zero] : [])];
  return {
    mode: spec.mode,
    source_dtype: source.dtype,
    shape: source.shape,
    rule: step.origin,
    axis: spec.axis,
    ...(spec.packAxis !== undefined ? { pack_axis: spec.packAxis, orig_len: step.origLen } : {}),
    ...(spec.blockSize !== undefined ? { block_size: spec.blockSize } : {}),
    ...(spec.valueRange !== undefined ? { value_range: spec.valueRange } : {}),
    ...(spec.epsilon !== undefined ? { epsilon: spec.epsilon } : {}),
    ...(spec.margin !== undefined ? { margin: spec.margin } : {}),
    backend: spec.backend ?? DEFAULT_BACKEND,
    values: step.values.name,
    scale: step.scale.name,
    ...(step.zero ? { zero: step.zero.name } : {}),
    dequantize: dequantizeFormula(spec.mode),
    sha256: {
      source: HASH_PLACEHOLDER,
      stored: Object.fromEntries(stored.map((t) => [t.name, HASH_PLACEHOLDER])),
    },
  };
}

export function newManifest(
  sourceFile: string,
  sourceMetadata: Readonly<Record<string, string>> | null,
  options: Record<string, unknown>,
  steps: readonly Step[],
): Manifest {
  return {
    format: "kquant",
    format_version: MANIFEST_FORMAT,
    kquant_version: VERSION,
    keras_version: KERAS_VERSION,
    options,
    source: { file: sourceFile, metadata: sourceMetadata ? { ...sourceMetadata } : null },
    tensors: Object.fromEntries(steps.map((s) => [s.source.name, recordFor(s)])),
  };
}

/**
 * Reads the manifest of a kquant output from its `__metadata__`, or null if it has none.
 * Throws on a manifest that is there but unreadable.
 */
export function manifestFromMetadata(metadata: Readonly<Record<string, string>> | null): Manifest | null {
  const text = metadata?.[MANIFEST_KEY];
  if (text === undefined) return null;
  const m = JSON.parse(text) as Manifest;
  if (m.format !== "kquant" || typeof m.tensors !== "object") throw new Error("not a kquant manifest");
  return m;
}
