/**
 * `kquant inspect`: what a weight file holds. Reads headers only, except with `stats`, which
 * reads one floating tensor at a time.
 */
import { bitsOf, byteLengthOf, elementCountOf } from "../../formats/dtypes.js";
import { openTensors } from "../../formats/open.js";
import type { StDType, TensorInfo } from "../../formats/types.js";
import { mlxSummary, type MlxSummary } from "./mlx-folder.js";
import { schemeParameters, schemeSummary, type SchemeSummary } from "./scheme-folder.js";
import { compileGlob, matchesAny } from "../../plan/glob.js";
import { KquantError } from "../../errors.js";
import { readManifest } from "./dequantize.js";
import { layoutOf, MANIFEST_KEY, storedOf, type Manifest } from "../manifest.js";
import { FLOAT_DTYPES } from "../float-values.js";
import type { WorkerPool } from "../workers.js";
import { inFlight, inOrder, readBackPool, statsComputer, type ReadBackThreads } from "./parallel-read-back.js";
import type { TensorStats } from "./stats.js";
import { maxOf } from "../../units.js";

export interface InspectOptions extends ReadBackThreads {
  stats?: boolean;
  filter?: string[];
  /** Histogram bins for `stats` (default 10). */
  bins?: number;
}

export interface InspectedTensor {
  name: string;
  dtype: StDType;
  shape: number[];
  /**
   * Model parameters it holds: its elements, or in a kquant output the source tensor's (a packed
   * int4 64×64 holds 4096, not its 2048 bytes); scales and zero points hold none.
   */
  parameters: number;
  bytes: number;
  file: string;
  stats?: TensorStats;
}

export interface QuantizedSummary {
  /** The source tensor's name. */
  name: string;
  mode: string;
  source_dtype: StDType;
  shape: number[];
  axis: number | null;
  stored_dtype: StDType;
  stored_shape: number[];
  scale_shape: number[] | null;
  zero_shape: number[] | null;
  orig_len: number | null;
  block_size: number | null;
  source_bytes: number;
  /** Values plus scale and zero. */
  stored_bytes: number;
  /** Stored bits (scale and zero included) per source element. */
  bits_per_weight: number;
  reason?: string;
}

export interface KquantSummary {
  kquant_version: string;
  format_version: number;
  source_file: string;
  options: Record<string, unknown>;
  modes: Record<string, number>;
  tensors: QuantizedSummary[];
  source_bytes: number;
  stored_bytes: number;
  compression_ratio: number;
}

export interface InspectReport {
  file: string;
  format: "safetensors" | "sharded safetensors" | "npy" | "npz";
  files: string[];
  tensors: InspectedTensor[];
  totals: { tensors: number; parameters: number; bytes: number };
  /** `__metadata__` without the kquant manifest (summarised in `kquant`). */
  metadata: Record<string, string> | null;
  kquant: KquantSummary | null;
  /** An MLX folder's quantization (config.json's, no kquant manifest), else null. */
  mlx: MlxSummary | null;
  /** A --scheme (llm-compressor model_free_ptq) folder's quantization (config.json's quantization_config), else null. */
  scheme: SchemeSummary | null;
}

function formatOf(path: string): InspectReport["format"] {
  const lower = path.toLowerCase();
  if (lower.endsWith(".safetensors.index.json")) return "sharded safetensors";
  if (lower.endsWith(".npy")) return "npy";
  if (lower.endsWith(".npz")) return "npz";
  return "safetensors";
}

export function summariseManifest(manifest: Manifest, infos: ReadonlyMap<string, TensorInfo>, fileBytes: number): KquantSummary {
  const tensors: QuantizedSummary[] = [];
  const modes: Record<string, number> = {};
  let sourceBytes = 0;
  for (const [name, rec] of Object.entries(manifest.tensors)) {
    const elements = elementCountOf(rec.shape) ?? 0;
    const srcBytes = (elements * bitsOf(rec.source_dtype)) / 8;
    sourceBytes += srcBytes;
    modes[rec.mode] = (modes[rec.mode] ?? 0) + 1;
    const stored = storedOf(name, rec, layoutOf(manifest));
    const byRole = (role: string) => stored.find((e) => e.role === role);
    const values = byRole("values") ?? byRole("passthrough") ?? stored[0];
    const storedBytes = stored.reduce((n, e) => {
      const info = infos.get(e.name);
      return n + (info ? info.byteLength : byteLengthOf(e.dtype, e.shape));
    }, 0);
    tensors.push({
      name,
      mode: rec.mode,
      source_dtype: rec.source_dtype,
      shape: rec.shape,
      axis: rec.axis ?? null,
      stored_dtype: infos.get(values?.name ?? name)?.dtype ?? values?.dtype ?? rec.source_dtype,
      stored_shape: infos.get(values?.name ?? name)?.shape ?? values?.shape ?? rec.shape,
      scale_shape: byRole("scale")?.shape ?? null,
      zero_shape: byRole("zero")?.shape ?? null,
      orig_len: rec.orig_len ?? null,
      block_size: rec.block_size ?? null,
      source_bytes: srcBytes,
      stored_bytes: storedBytes,
      bits_per_weight: elements === 0 ? 0 : (storedBytes * 8) / elements,
      ...(rec.reason !== undefined ? { reason: rec.reason } : {}),
    });
  }
  return {
    kquant_version: manifest.kquant_version,
    format_version: manifest.format_version,
    source_file: manifest.source?.file ?? "",
    options: manifest.options ?? {},
    modes,
    tensors,
    source_bytes: sourceBytes,
    stored_bytes: fileBytes,
    compression_ratio: fileBytes === 0 ? 0 : sourceBytes / fileBytes,
  };
}

/**
 * Parameters by stored tensor name in a kquant output: the source's elements on the tensor that
 * holds its values (the values or passthrough tensor; where a layout re-encodes them, its first
 * tensor: compressed-tensors' weight_packed, MLX's weight), 0 on scales, zero points and shapes.
 */
function sourceParameters(manifest: Manifest): Map<string, number> {
  const out = new Map<string, number>();
  const layout = layoutOf(manifest);
  for (const [name, rec] of Object.entries(manifest.tensors)) {
    const stored = storedOf(name, rec, layout);
    const main = stored.find((e) => e.role === "values" || e.role === "passthrough") ?? stored[0];
    for (const e of stored) out.set(e.name, e === main ? (elementCountOf(rec.shape) ?? 0) : 0);
  }
  return out;
}

/** Names in natural order: digit runs compare as numbers (layers 2 before 10), the rest as text. */
export function naturalCompare(a: string, b: string): number {
  const x = a.split(/(\d+)/);
  const y = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    // Odd pieces are the digit runs.
    if (i % 2 === 1) {
      const d = Number(x[i]) - Number(y[i]);
      if (d !== 0) return d;
    }
    return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}

/** An MLX folder's quantized weights hold their float shape's parameters, their scales and biases none. */
function mlxParameters(mlx: MlxSummary | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of mlx?.tensors ?? []) {
    const base = t.name.slice(0, -".weight".length);
    out.set(t.name, t.shape.reduce((a, b) => a * b, 1)).set(`${base}.scales`, 0).set(`${base}.biases`, 0);
  }
  return out;
}

export async function runInspect(path: string, opts: InspectOptions = {}): Promise<InspectReport> {
  const reader = await openTensors(path);
  let pool: WorkerPool | null = null;
  try {
    const patterns = (opts.filter ?? []).map(compileGlob);
    const selected = (name: string) => patterns.length === 0 || matchesAny(name, patterns);
    const manifest = await readManifest(reader);
    const infos = new Map(reader.tensors.map((t) => [t.name, t]));
    const allBytes = reader.tensors.reduce((n, t) => n + t.byteLength, 0);

    const mlx = manifest ? null : await mlxSummary(path, reader);
    const scheme = manifest || mlx ? null : await schemeSummary(path, reader);
    const parameters = manifest ? sourceParameters(manifest) : scheme ? schemeParameters(scheme) : mlxParameters(mlx);
    const tensors: InspectedTensor[] = reader.tensors
      .filter((t) => selected(t.name))
      .sort((a, b) => naturalCompare(a.name, b.name))
      .map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        parameters: parameters.get(t.name) ?? elementCountOf(t.shape) ?? 0,
        bytes: t.byteLength,
        file: t.file,
      }));
    if (opts.stats) {
      // A few tensors at a time on the workers (parallel-read-back.ts), while the next are read.
      const floats = reader.tensors.filter((t) => selected(t.name) && FLOAT_DTYPES.has(t.dtype));
      pool = readBackPool(opts, floats.reduce((n, t) => n + t.byteLength, 0));
      const stats = statsComputer(pool);
      const byName = new Map(tensors.map((e) => [e.name, e]));
      await inOrder(
        floats,
        // Float32 tensors are summarised in place on every engine, so a record holds its tensor and
        // nothing else: two of the largest fit the bound (2 × the largest + 150 MiB), and both
        // workers are busy even on tensors of hundreds of MiB. Other dtypes may be widened to a
        // float32 copy first (float8 and float64 always, float16 and bfloat16 without SIMD).
        inFlight(pool, floats, (t) => t.byteLength, floats.every((t) => t.dtype === "F32") ? 2 * maxOf(floats.map((t) => t.byteLength)) : 0),
        async (t) => stats(t.dtype, await reader.read(t.name, stats.buffer(t.byteLength, { file: t.file, name: t.name })), opts.bins ?? 10),
        (s, t) => void (byName.get(t.name)!.stats = s),
      );
    }
    if (patterns.length > 0 && tensors.length === 0 && !(manifest && Object.keys(manifest.tensors).some(selected))) {
      throw new KquantError({ file: path, what: `no tensor matches ${opts.filter!.join(", ")}` });
    }

    let kquant: KquantSummary | null = null;
    if (manifest) {
      kquant = summariseManifest(manifest, infos, allBytes);
      kquant.tensors = kquant.tensors.filter((q) => selected(q.name)).sort((a, b) => naturalCompare(a.name, b.name));
    }
    let metadata: Record<string, string> | null = null;
    if (reader.metadata) {
      metadata = Object.fromEntries(Object.entries(reader.metadata).filter(([k]) => k !== MANIFEST_KEY));
    }
    return {
      file: path,
      format: formatOf(path),
      files: [...new Set(reader.tensors.map((t) => t.file))],
      tensors,
      totals: {
        tensors: tensors.length,
        parameters: tensors.reduce((n, t) => n + t.parameters, 0),
        bytes: tensors.reduce((n, t) => n + t.bytes, 0),
      },
      metadata,
      kquant,
      mlx: mlx && { ...mlx, tensors: mlx.tensors.filter((t) => selected(t.name)) },
      scheme: scheme && { ...scheme, tensors: scheme.tensors.filter((t) => selected(t.name)) },
    };
  } finally {
    await pool?.close();
    await reader.close();
  }
}
