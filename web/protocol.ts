/** What the page (main.ts) and its worker (worker.ts) say to each other, and how picked files become the input path. */
import { KquantError } from "../src/errors.js";

/** The page's choices: the CLI's quantize options. */
export interface Choice {
  /** A registered mode's flag without dashes (int8, int4, float8), or "" for the recipe alone. */
  mode: string;
  /** --block-size (grouped int4; int8 in MLX's groups), or null for none. */
  blockSize: number | null;
  /** --float8's format: e4m3 or e5m2. */
  float8Format: string;
  /** --keras-backend. */
  backend: string;
  /** --layout, "" for the default (kquant). */
  layout: string;
  /** The recipe's JSON text, "" for none. */
  recipe: string;
}

/** A picked file, at its path relative to the pick (a folder's name first for a folder). */
export interface PickedFile {
  path: string;
  file: File;
}

export interface TensorRow {
  name: string;
  dtype: string;
  shape: number[];
  byteLength: number;
  file: string;
}

export type ToWorker =
  | { type: "open"; files: PickedFile[] }
  | { type: "recipe"; text: string }
  | { type: "plan"; choice: Choice }
  /** `destination`: where the user picked to save the outputs (sink.ts); without it they stay in the page as Blobs. */
  /** `threads`: pool workers (pool.ts; 0 for none), or absent for the CLI's default. */
  | { type: "run"; choice: Choice; totalBytes: number; destination?: import("./sink.js").Destination; threads?: number }
  /** `kquant verify <output> --against <input> --html`: the report's page. */
  | { type: "verify"; output: string };

export type FromWorker =
  | { type: "opened"; input: string; metadata: Readonly<Record<string, string>> | null; tensors: TensorRow[] }
  | { type: "recipe-ok" }
  | { type: "planned"; report: import("../src/pipeline/quantize/run-quantize.js").QuantizeReport }
  | { type: "progress"; done: number; total: number; elapsedMs: number }
  /** A file or folder the run is creating in the folder picked (removed if the page stops the run). */
  | { type: "created"; path: string }
  /** `saved`: whether the output went to the destination picked (its blob is then the file on disk), else it is in the page. */
  | { type: "done"; report: import("../src/pipeline/quantize/run-quantize.js").QuantizeReport; outputs: { path: string; blob: Blob; saved: boolean }[]; elapsedMs: number }
  | { type: "verified"; html: string; ok: boolean; status: string }
  | { type: "error"; request: ToWorker["type"]; text: string };

const READS = "expected .safetensors, .safetensors.index.json (with its shards), .npy, .npz, or a model folder";

/**
 * The path kquant opens for `paths` (as picked): a folder (its first path segment) for a folder
 * pick, the index among a sharded set, or the one file. Throws the one-line error otherwise.
 */
export function inputOf(paths: readonly string[]): string {
  if (paths.length === 0) throw new KquantError({ what: "no file picked", hint: READS });
  const tops = new Set(paths.map((p) => (p.includes("/") ? p.slice(0, p.indexOf("/")) : null)));
  if (tops.size === 1 && !tops.has(null)) return [...tops][0]!;
  const index = paths.filter((p) => p.toLowerCase().endsWith(".safetensors.index.json"));
  if (index.length === 1) return index[0]!;
  if (paths.length === 1) return paths[0]!;
  throw new KquantError({ what: `${paths.length} files picked`, hint: "pick one file, a .safetensors.index.json with its shards, or one model folder" });
}
