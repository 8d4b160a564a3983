/** What the page (main.ts) and its worker (worker.ts) say to each other, and how picked files become the input path. */
import { KquantError } from "../src/errors.js";

/** The page's choices: the CLI's quantize options. */
export interface Choice {
  /** A registered mode's flag without dashes (int8, int4, float8), a folder mode's (scheme, mlx), or "" for the recipe alone. */
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
  /** The folder modes' own options (mode "scheme" or "mlx"; web/folder-modes.ts). */
  folder?: FolderModeChoice;
}

/** The mode picker's values for the folder modes (model folder in, folder out): the CLI's flags without dashes. */
export const FOLDER_MODES = ["scheme", "mlx"] as const;

/** Is `mode` (the picker's value) one of the folder modes? */
export function isFolderMode(mode: string): mode is (typeof FOLDER_MODES)[number] {
  return (FOLDER_MODES as readonly string[]).includes(mode);
}

/** `--scheme NAME [--ignore E]...` and `--mlx MODE [--bits N] [--dtype D]` (with Choice.blockSize as --block-size). */
export interface FolderModeChoice {
  /** --scheme's preset name. */
  scheme: string;
  /** --ignore entries (module names, re:PATTERN). */
  ignore: string[];
  /** --mlx's mode (affine, mxfp4, mxfp8, nvfp4). */
  mlxMode: string;
  /** --bits, null for the mode's default. */
  bits: number | null;
  /** --dtype, "" for config.json's. */
  dtype: string;
}

/** The dry run of a folder mode (--mlx's own --dry-run report, or what the --scheme descriptor tells before a run). */
export type FolderModePlan =
  | { kind: "mlx"; report: import("../src/pipeline/quantize/mlx-run.js").MlxReport }
  | { kind: "scheme"; preview: import("./folder-modes.js").SchemePreview };

/** What the page needs of a finished folder-mode run (its report has no manifest). */
export interface FolderModeDone {
  kind: "scheme" | "mlx";
  output: string;
  manifest?: undefined;
  bytes_before: number;
  /** --scheme: weights that stay float, and why (the CLI's warnings). */
  kept: { name: string; reason: string }[];
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
  | { type: "verify"; output: string }
  /** The page has noted the path of "created" `id`: the run may create it now (answered outside the request queue). */
  | { type: "created-noted"; id: number };

export type FromWorker =
  | { type: "opened"; input: string; metadata: Readonly<Record<string, string>> | null; tensors: TensorRow[] }
  | { type: "recipe-ok" }
  | { type: "planned"; report: import("../src/pipeline/quantize/run-quantize.js").QuantizeReport }
  | { type: "planned-folder-mode"; plan: FolderModePlan }
  | { type: "progress"; done: number; total: number; elapsedMs: number }
  /**
   * A file or folder the run is about to create in the folder picked (removed if the page stops
   * the run). The run waits for "created-noted" with the same `id` before creating it, so a cancel
   * never misses a path still in flight.
   */
  | { type: "created"; id: number; path: string }
  /** `saved`: whether the output went to the destination picked (its blob is then the file on disk), else it is in the page. */
  | { type: "done"; report: import("../src/pipeline/quantize/run-quantize.js").QuantizeReport | FolderModeDone; outputs: { path: string; blob: Blob; saved: boolean }[]; elapsedMs: number }
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
