/**
 * The manifest: everything needed to read a kquant output back, stored in the safetensors
 * `__metadata__` under "kquant" and beside the output as `<output>.json`.
 */
import type { StDType } from "../formats/types.js";
import { KQUANT_LAYOUT } from "../layouts/kquant.js";
import { layoutNamed } from "../layouts/index.js";
import type { Layout, LayoutName } from "../layouts/layout.js";
import type { Step } from "../plan/plan.js";
import { dequantizeFormula, type Mode } from "../plan/spec.js";
import type { StoredRole } from "../plan/stored.js";
import { VERSION } from "../version.js";
import { HASH_ALGORITHM, HEX_LENGTH, type HashAlgorithm } from "./hash.js";

export const MANIFEST_KEY = "kquant";
export const MANIFEST_FORMAT = 1;

/** Hashes are fixed-length hex, so a header laid out with this placeholder keeps its size when filled in. */
export const HASH_PLACEHOLDER = "0".repeat(HEX_LENGTH[HASH_ALGORITHM]);

/** Hashes (hex) of the source tensor's bytes and of each stored tensor's bytes, by stored name. */
export interface TensorHashes {
  source: string;
  stored: Record<string, string>;
}

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
  /** Names of the stored tensors. */
  values?: string;
  scale?: string;
  zero?: string;
  dequantize?: string;
  /** The algorithm of `hashes` (hash.ts); absent in manifests written before it, which hold `sha256`. */
  hash?: HashAlgorithm;
  hashes?: TensorHashes;
  /** Manifests written before `hash`: sha256 hashes. */
  sha256?: TensorHashes;
}

/** A record's hashes and their algorithm (an older manifest's sha256 included); undefined hashes when it has none. */
export function hashesOf(rec: TensorRecord): { algorithm: HashAlgorithm; hashes: TensorHashes | undefined } {
  if (rec.hash !== undefined) return { algorithm: rec.hash, hashes: rec.hashes };
  return { algorithm: "sha256", hashes: rec.sha256 };
}

export interface Manifest {
  format: "kquant";
  format_version: number;
  kquant_version: string;
  /** How the stored tensors are named and shaped (layouts/); absent in manifests before layouts: "kquant". */
  layout?: LayoutName;
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
      hash: HASH_ALGORITHM,
      hashes: { source: HASH_PLACEHOLDER, stored: { [step.output.name]: HASH_PLACEHOLDER } },
    };
  }
  const { spec } = step;
  const { written } = step;
  // The record names the written tensor that holds each stored role's bytes.
  const nameOf = (role: StoredRole) => written.find((t) => t.from === role)?.name;
  const zero = nameOf("zero");
  return {
    mode: spec.mode,
    source_dtype: source.dtype,
    shape: source.shape,
    rule: step.origin,
    axis: spec.axis,
    ...(spec.packAxis !== undefined ? { pack_axis: spec.packAxis, orig_len: source.shape[spec.packAxis] } : {}),
    ...(spec.blockSize !== undefined ? { block_size: spec.blockSize } : {}),
    ...(spec.valueRange !== undefined ? { value_range: spec.valueRange } : {}),
    ...(spec.epsilon !== undefined ? { epsilon: spec.epsilon } : {}),
    ...(spec.margin !== undefined ? { margin: spec.margin } : {}),
    values: nameOf("values"),
    scale: nameOf("scale"),
    ...(zero !== undefined ? { zero } : {}),
    dequantize: dequantizeFormula(spec.mode),
    hash: HASH_ALGORITHM,
    hashes: {
      source: HASH_PLACEHOLDER,
      stored: Object.fromEntries(written.map((t) => [t.name, HASH_PLACEHOLDER])),
    },
  };
}

export function newManifest(
  layout: LayoutName,
  sourceFile: string,
  sourceMetadata: Readonly<Record<string, string>> | null,
  options: Record<string, unknown>,
  steps: readonly Step[],
): Manifest {
  return {
    format: "kquant",
    format_version: MANIFEST_FORMAT,
    kquant_version: VERSION,
    layout,
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

/** The layout a manifest's files are written in. */
export function layoutOf(manifest: Manifest): Layout {
  return manifest.layout === undefined ? KQUANT_LAYOUT : layoutNamed(manifest.layout);
}
