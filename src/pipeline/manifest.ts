/**
 * The manifest: everything needed to read a kquant output back, stored in the safetensors
 * `__metadata__` under "kquant" and beside the output as `<output>.json`.
 */
import { KquantError } from "../errors.js";
import type { PlannedTensor, StDType } from "../formats/types.js";
import { KQUANT_LAYOUT } from "../layouts/kquant.js";
import { LAYOUT_NAMES, layoutNamed } from "../layouts/index.js";
import type { Layout, LayoutName, WrittenTensor } from "../layouts/layout.js";
import type { Step } from "../plan/plan.js";
import { specProblem } from "../plan/spec-check.js";
import { dequantizeFormula, type Mode } from "../plan/spec.js";
import { isMode, modeNamed } from "../modes/registry.js";
import { storedNamesOf, storedTensors, type StoredGeometry, type StoredRole } from "../plan/stored.js";
import { VERSION } from "../version.js";
import { KERAS_VERSION } from "../version.js";
import { DEFAULT_BACKEND, type KerasBackend } from "../quant/backend.js";
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
  /** The Keras backend whose arithmetic the stored bytes reproduce. */
  backend?: KerasBackend;
  /** Names of the stored tensors. */
  values?: string;
  scale?: string;
  zero?: string;
  /** Keras's layout, grouped int4: the layer's g_idx tensor (input row → its group). */
  g_idx?: string;
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
  /** The Keras release the stored bytes match (bit for bit, on `backend`). */
  keras_version?: string;
  /** The options the run was given, as the CLI understood them. */
  options: Record<string, unknown>;
  source: { file: string; metadata: Record<string, string> | null };
  /** In write order. */
  tensors: Record<string, TensorRecord>;
  /**
   * The other files the run wrote beside the weights (the sharded index, a layout's config.json),
   * by name in the weights' folder: their hashes (in `files_hash`) of the bytes as written. Absent in
   * manifests before it: then verify has no other file to check.
   */
  files?: Record<string, string>;
  files_hash?: HashAlgorithm;
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
    backend: spec.backend ?? DEFAULT_BACKEND,
    values: nameOf("values"),
    scale: nameOf("scale"),
    ...(zero !== undefined ? { zero } : {}),
    ...Object.fromEntries(written.flatMap((t) => (t.manifestKey ? [[t.manifestKey, t.name]] : []))),
    dequantize: dequantizeFormula(spec, source.shape),
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
    keras_version: KERAS_VERSION,
    options,
    source: { file: sourceFile, metadata: sourceMetadata ? { ...sourceMetadata } : null },
    tensors: Object.fromEntries(steps.map((s) => [s.source.name, recordFor(s)])),
  };
}

/**
 * Reads the manifest of a kquant output (`file`) from its `__metadata__`, or null if it has none.
 * Parsed and checked here, once: every record must describe stored tensors its layout can write
 * (expectedTensors), so readers take records as they are. Throws naming the first bad record.
 */
export function manifestFromMetadata(metadata: Readonly<Record<string, string>> | null, file = "__metadata__"): Manifest | null {
  const text = metadata?.[MANIFEST_KEY];
  if (text === undefined) return null;
  const unreadable = (what: string, tensor?: string) =>
    new KquantError({ file, ...(tensor !== undefined ? { tensor } : {}), what: `the kquant manifest ${what}` });
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch (err) {
    throw unreadable(`is not valid JSON (${(err as Error).message.split("\n")[0]})`);
  }
  if (m === null || typeof m !== "object" || m.format !== "kquant" || typeof m.tensors !== "object" || m.tensors === null) {
    throw unreadable("is not a kquant manifest");
  }
  if (m.layout !== undefined && !(LAYOUT_NAMES as readonly string[]).includes(m.layout)) throw unreadable(`names an unknown layout ${JSON.stringify(m.layout)}`);
  const layout = layoutOf(m);
  for (const [name, rec] of Object.entries(m.tensors)) {
    if (rec === null || typeof rec !== "object") throw unreadable("record is not an object", name);
    if (rec.hash !== undefined && !Object.hasOwn(HEX_LENGTH, rec.hash)) throw unreadable(`record names an unknown hash algorithm ${JSON.stringify(rec.hash)}`, name);
    const expected = expectedTensors(name, rec, layout);
    if (typeof expected === "string") throw unreadable(`record: ${expected.replace(/^manifest /, "")}`, name);
  }
  return m;
}

/** A tensor the manifest says is stored, with the dtype and shape it must have. */
export type ExpectedTensor = PlannedTensor & {
  /** The stored role whose bytes it holds, "passthrough", or "derived": bytes the layout makes (`encode`). */
  role: StoredRole | "passthrough" | "derived";
  encode?: WrittenTensor["encode"];
};

/** The stored geometry a record describes (plan/stored.ts), or why it is inconsistent. */
export function geometryOf(rec: TensorRecord): StoredGeometry | string {
  const shape = rec.shape;
  const rank = shape.length;
  if (!isMode(rec.mode)) return `manifest mode ${JSON.stringify(rec.mode)} is unknown`;
  const mode = rec.mode;
  const d = modeNamed(mode);
  const axis = rec.axis ?? null;
  if (axis !== null && !(Number.isInteger(axis) && axis >= 0 && axis < rank)) return `manifest axis ${axis} is out of range for shape [${shape}]`;
  const g: StoredGeometry = { mode, axis };
  if (d.packed) {
    const pa = rec.pack_axis;
    if (pa === undefined || !(Number.isInteger(pa) && pa >= 0 && pa < rank)) return `manifest pack_axis ${pa} is out of range for shape [${shape}]`;
    if (rec.orig_len !== shape[pa]) return `manifest orig_len ${rec.orig_len} is not the length ${shape[pa]} of pack axis ${pa}`;
    g.packAxis = pa;
  }
  if (d.grouped) {
    const block = rec.block_size;
    if (axis === null) return "manifest axis null cannot group";
    const problem = specProblem({ mode, axis, ...(block !== undefined ? { blockSize: block } : {}) });
    if (problem) return `manifest ${problem.what}`;
    g.blockSize = block!;
  } else if (rec.block_size !== undefined) {
    // A layout's group size for modes kquant itself does not group (MLX's int8 and int4).
    if (!(Number.isInteger(rec.block_size) && rec.block_size >= 1)) return `manifest block_size ${rec.block_size} is not a positive integer`;
    g.blockSize = rec.block_size;
  }
  return g;
}

/** What `rec`'s stored tensors must be, or why the record itself is inconsistent. */
export function expectedTensors(name: string, rec: TensorRecord, layout: Layout): ExpectedTensor[] | string {
  const shape = rec.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return `manifest shape ${JSON.stringify(shape)} is not a shape`;
  if (rec.mode === "passthrough") return [{ role: "passthrough", name, dtype: rec.source_dtype, shape }];
  const g = geometryOf(rec);
  if (typeof g === "string") return g;
  const stored = storedTensors(storedNamesOf(name), shape, g);
  let written: WrittenTensor[];
  try {
    written = layout.written({ name, dtype: rec.source_dtype, shape }, g, stored);
  } catch (err) {
    if (err instanceof KquantError) return err.what;
    throw err;
  }
  const out = written.map((t): ExpectedTensor => ({ name: t.name, dtype: t.dtype, shape: t.shape, role: t.from ?? "derived", ...(t.encode ? { encode: t.encode } : {}) }));
  const recorded: [StoredRole, string | undefined][] = [["values", rec.values], ["scale", rec.scale], ["zero", rec.zero]];
  // The record names the tensors that hold a stored role's bytes as they are (none where the layout re-encodes it).
  for (const [role, recName] of recorded) {
    const e = out.find((x) => x.role === role);
    if (e?.name !== recName) return `manifest names ${recName === undefined ? "no" : `"${recName}" as the`} ${role} tensor, the ${layout.name} layout writes ${e ? `"${e.name}"` : "none"}`;
  }
  return out;
}

/** The stored tensors of a record of a manifest read by manifestFromMetadata (which checked it). */
export function storedOf(name: string, rec: TensorRecord, layout: Layout): ExpectedTensor[] {
  const expected = expectedTensors(name, rec, layout);
  if (typeof expected === "string") throw new KquantError({ tensor: name, what: `unchecked manifest record: ${expected}` });
  return expected;
}

/** The layout a manifest's files are written in. */
export function layoutOf(manifest: Manifest): Layout {
  return manifest.layout === undefined ? KQUANT_LAYOUT : layoutNamed(manifest.layout);
}
