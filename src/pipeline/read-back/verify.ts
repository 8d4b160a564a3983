/**
 * `kquant verify`: is a kquant output sound, and (with an original) how close is it?
 *
 * Always: the manifest agrees with the stored tensors (dtypes, shapes, packed lengths, scale and
 * zero shapes), every stored tensor's hash (xxh3-128, sha256 in older manifests) matches the manifest, and the contents make sense
 * (scales finite and positive, integer codes inside the value range, int4 padding nibbles zero,
 * zero points in range, no NaN float8 codes) — so a flipped byte is found by its hash, and a bad
 * value whose hash was fixed up is still found by its meaning.
 * With `against`: the source hashes match the original's tensors, and each quantized tensor is
 * dequantized and measured against the original; thresholds make that a gate.
 * A few records in memory at a time, checked on worker threads (parallel-read-back.ts).
 */
import { KquantError } from "../../errors.js";
import { openTensors } from "../../formats/open.js";
import type { TensorInfo, TensorReader } from "../../formats/types.js";
import type { Layout } from "../../layouts/layout.js";
import { compileGlob, matchesAny } from "../../plan/glob.js";
import type { Mode } from "../../plan/spec.js";
import type { ErrorHistogram } from "../../quant/error-histogram.js";
import type { ErrorMetrics } from "../../quant/error-metrics.js";
import { layoutOf, storedOf, type Manifest, type TensorRecord } from "../manifest.js";
import type { WorkerPool } from "../workers.js";
import type { RecordBytes, RecordChecker } from "./check-record.js";
import { readManifest } from "./dequantize.js";
import { DEFAULT_MIN_SQNR } from "./floor.js";
import { MIN_PARALLEL_CHECK_BYTES, inFlight, inOrder, readBackPool, recordChecker, type ReadBackThreads } from "./parallel-read-back.js";
import { maxOf, minOf } from "../../units.js";
import { stat } from "node:fs/promises";
import { readRegularFile } from "../../formats/io.js";
import { manifestPathFor } from "../quantize/outputs.js";
import { dirname } from "node:path";
import { isFolder } from "../../formats/folder.js";
import { fileHashProblems } from "../folder-manifest.js";

export interface Thresholds {
  minSqnr?: number;
  minCosine?: number;
  maxAbsError?: number;
  /** The default floor (no threshold given): the least SQNR in dB each mode must reach. */
  minSqnrByMode?: Partial<Record<Mode, number>>;
}


export interface VerifyOptions extends Thresholds, ReadBackThreads {
  against?: string;
  filter?: string[];
  /** With `against`: also count each measured tensor's errors into this many bins (for the HTML report). */
  histogramBins?: number;
  /**
   * With `against`: re-derive each quantized tensor's stored bytes from the original with the
   * manifest's options and fail any that differ (exact.ts; layouts that re-encode the stored
   * tensors are measured only).
   */
  exact?: boolean;
}

export interface TensorVerdict {
  name: string;
  /** A kquant mode, `mlx_<mode>` for an MLX folder's weights, `scheme_<PRESET>` for a --scheme folder's, or passthrough. */
  mode: Mode | `mlx_${string}` | `scheme_${string}` | "passthrough";
  /** Integrity and consistency problems (a broken file). */
  problems: string[];
  /** Against the original, quantized tensors only. */
  metrics?: ErrorMetrics;
  /** With `histogramBins`: the distribution of (dequantized − original), when the max error is finite. */
  error_histogram?: ErrorHistogram;
  /** Thresholds this tensor missed. */
  gate_failures: string[];
  ok: boolean;
}

export interface VerifyReport {
  file: string;
  against: string | null;
  thresholds: Thresholds;
  /** Problems that belong to no single record (tensors the manifest does not know, originals missing). */
  file_problems: string[];
  tensors: TensorVerdict[];
  summary: {
    tensors: number;
    quantized: number;
    passthrough: number;
    failed: number;
    hashes_checked: number;
    /**
     * The other files the manifest vouches for (index, config.json) whose hashes were checked, or
     * null when the manifest records none (written before kquant recorded them, or an MLX folder without kquant's folder manifest).
     */
    files_checked: string[] | null;
    min_sqnr_db: number | null;
    mean_sqnr_db: number | null;
    min_cosine: number | null;
    max_abs_error: number | null;
  };
  ok: boolean;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** The verdict's summary and overall answer. */
export function verifyReport(
  path: string,
  against: string | undefined,
  thresholds: Thresholds,
  fileProblems: string[],
  verdicts: TensorVerdict[],
  hashes: number,
  filesChecked: string[] | null = null,
): VerifyReport {
  const sqnrs = verdicts.flatMap((v) => (v.metrics ? [v.metrics.sqnrDb] : []));
  const finiteSqnrs = sqnrs.filter(Number.isFinite);
  const withMetrics = verdicts.flatMap((v) => (v.metrics ? [v.metrics] : []));
  const failed = verdicts.filter((v) => !v.ok).length;
  return {
    file: path,
    against: against ?? null,
    thresholds,
    file_problems: fileProblems,
    tensors: verdicts,
    summary: {
      tensors: verdicts.length,
      quantized: verdicts.filter((v) => v.mode !== "passthrough").length,
      passthrough: verdicts.filter((v) => v.mode === "passthrough").length,
      failed,
      hashes_checked: hashes,
      files_checked: filesChecked,
      min_sqnr_db: sqnrs.length ? minOf(sqnrs) : null,
      mean_sqnr_db: finiteSqnrs.length ? finiteSqnrs.reduce((a, b) => a + b, 0) / finiteSqnrs.length : null,
      min_cosine: withMetrics.length ? minOf(withMetrics.map((m) => m.cosine)) : null,
      max_abs_error: withMetrics.length ? maxOf(withMetrics.map((m) => m.maxAbsError)) : null,
    },
    ok: failed === 0 && fileProblems.length === 0,
  };
}

/**
 * The thresholds metrics `m` miss, one line each. `floor`: the default floor of a tensor whose
 * mode is not a kquant mode (a --scheme preset's, given by its descriptor when the floors apply).
 */
export function gateFailures(m: ErrorMetrics, t: Thresholds, mode: TensorVerdict["mode"], floor = t.minSqnrByMode?.[mode as Mode]): string[] {
  const out: string[] = [];
  if (m.nonFiniteMismatches > 0) out.push(`${m.nonFiniteMismatches} value(s) non-finite on one side only`);
  if (t.minSqnr !== undefined && !(m.sqnrDb >= t.minSqnr)) out.push(`SQNR ${m.sqnrDb.toFixed(2)} dB < ${t.minSqnr}`);
  if (floor !== undefined && !(m.sqnrDb >= floor)) {
    out.push(`SQNR ${m.sqnrDb.toFixed(2)} dB < ${floor}, the default floor for ${mode} (a threshold flag replaces it)`);
  }
  if (t.minCosine !== undefined && !(m.cosine >= t.minCosine)) out.push(`cosine ${m.cosine.toFixed(6)} < ${t.minCosine}`);
  if (t.maxAbsError !== undefined && !(m.maxAbsError <= t.maxAbsError)) out.push(`max abs error ${m.maxAbsError.toPrecision(4)} > ${t.maxAbsError}`);
  return out;
}

/**
 * The manifest kquant wrote beside the output (`<output>.json`), checked against the one in the
 * files' `__metadata__` (for a sharded output, every shard's together): the same records, field for
 * field. A shard dropped from an index, with its tensors, leaves records in the sidecar that no shard
 * holds. No sidecar is no problem (a copy may travel without it).
 */
async function sidecarProblems(path: string, manifest: Manifest): Promise<string[]> {
  const sidecar = manifestPathFor(path);
  const st = await stat(sidecar).catch(() => null);
  if (st === null) return [];
  let side: Manifest;
  try {
    side = JSON.parse((await readRegularFile(sidecar, 1 << 30)).toString("utf8")) as Manifest;
    if (side === null || typeof side !== "object" || side.tensors === null || typeof side.tensors !== "object") return [`${sidecar}: not a kquant manifest`];
  } catch (err) {
    if (err instanceof KquantError) return [err.message];
    if (err instanceof SyntaxError) return [`${sidecar}: not valid JSON`];
    throw err;
  }
  const problems: string[] = [];
  // Compared as JSON text: both come from one object when kquant writes them (JSON.stringify of a
  // document nested deeper than the stack is a RangeError, reported as a difference).
  const text = (v: unknown): string | null => {
    try {
      return JSON.stringify(v) ?? null;
    } catch {
      return null;
    }
  };
  const { tensors: sideTensors, ...sideRest } = side;
  const { tensors: embedded, ...rest } = manifest;
  if (text(sideRest) === null || text(sideRest) !== text(rest)) problems.push(`${sidecar}: the manifest's header (options, versions, source) differs from the one in __metadata__`);
  for (const [name, rec] of Object.entries(sideTensors)) {
    if (!Object.prototype.hasOwnProperty.call(embedded, name)) problems.push(`${sidecar}: tensor "${name}" is in the manifest beside the output but in no file's __metadata__ (a shard dropped from the index?)`);
    else if (text(rec) === null || text(rec) !== text(embedded[name])) problems.push(`${sidecar}: the record of tensor "${name}" differs from the one in __metadata__`);
  }
  for (const name of Object.keys(embedded)) {
    if (!Object.prototype.hasOwnProperty.call(sideTensors, name)) problems.push(`${sidecar}: tensor "${name}" is in __metadata__ but not in the manifest beside the output`);
  }
  return problems;
}

/**
 * The other files the manifest vouches for (`files`: name in the weights' folder → hash), each
 * read and hashed: a problem for each one missing, unreadable or changed. Names are plain file
 * names (a manifest is input: a path is refused, never followed).
 */
async function otherFileProblems(path: string, manifest: Manifest): Promise<{ checked: string[] | null; problems: string[] }> {
  if (manifest.files === undefined) return { checked: null, problems: [] };
  return fileHashProblems((await isFolder(path)) ? path : dirname(path), manifest.files, manifest.files_hash ?? "sha256");
}

export async function runVerify(path: string, opts: VerifyOptions = {}, onTensor?: (v: TensorVerdict) => void): Promise<VerifyReport> {
  const thresholds: Thresholds = {
    ...(opts.minSqnr !== undefined ? { minSqnr: opts.minSqnr } : {}),
    ...(opts.minCosine !== undefined ? { minCosine: opts.minCosine } : {}),
    ...(opts.maxAbsError !== undefined ? { maxAbsError: opts.maxAbsError } : {}),
  };
  if (Object.keys(thresholds).length > 0 && opts.against === undefined) {
    throw new KquantError({ what: "--min-sqnr, --min-cosine and --max-abs-error compare with the original", hint: "give --against ORIGINAL" });
  }
  if (opts.exact && opts.against === undefined) throw new KquantError({ what: "--exact re-derives the stored bytes from the original", hint: "give --against ORIGINAL" });
  if (Object.keys(thresholds).length === 0 && opts.against !== undefined) thresholds.minSqnrByMode = { ...DEFAULT_MIN_SQNR };
  const reader = await openTensors(path);
  let original: TensorReader | undefined;
  let pool: WorkerPool | null = null;
  try {
    const manifest = await readManifest(reader);
    if (opts.against !== undefined) original = await openTensors(opts.against);
    if (manifest === null) {
      // An MLX folder (mlx_lm.convert's, or kquant quantize --mlx's) is checked from its config.json.
      const { mlxFolderParams, verifyMlxFolder } = await import("./mlx-folder.js");
      const params = await mlxFolderParams(path);
      if (params !== null) return await verifyMlxFolder(path, reader, params, { ...opts, thresholds }, original, onTensor);
      // A --scheme folder (llm-compressor's model_free_ptq, or kquant quantize --scheme): its quantization_config.
      const { schemeFolderOf, verifySchemeFolder } = await import("./scheme-folder.js");
      const scheme = await schemeFolderOf(path);
      if (scheme === null) throw new KquantError({ file: path, what: "no kquant manifest in __metadata__, no MLX quantization and no llm-compressor preset's quantization_config in config.json; not a kquant output, nothing to verify" });
      return await verifySchemeFolder(path, reader, scheme, { ...opts, thresholds }, original, onTensor);
    }
    const patterns = (opts.filter ?? []).map(compileGlob);
    const selected = (name: string) => patterns.length === 0 || matchesAny(name, patterns);

    const infos = new Map(reader.tensors.map((t) => [t.name, t]));
    const originals = new Map<string, TensorInfo>((original?.tensors ?? []).map((t) => [t.name, t]));
    const fileProblems: string[] = [];
    const claimed = new Set<string>();
    const layout = layoutOf(manifest);
    for (const [name, rec] of Object.entries(manifest.tensors)) {
      for (const x of storedOf(name, rec, layout)) claimed.add(x.name);
    }
    for (const t of reader.tensors) {
      if (!claimed.has(t.name)) fileProblems.push(`tensor "${t.name}" is stored but the manifest does not know it`);
    }
    for (const p of await sidecarProblems(path, manifest)) fileProblems.push(p);
    const others = await otherFileProblems(path, manifest);
    for (const p of others.problems) fileProblems.push(p);
    if (original && patterns.length === 0) {
      for (const t of original.tensors) {
        if (!(t.name in manifest.tensors)) fileProblems.push(`${opts.against}: tensor "${t.name}" is in the original but not in the quantized file`);
      }
    }

    const verdicts: TensorVerdict[] = [];
    let hashes = 0;
    const records = Object.entries(manifest.tensors).filter(([name]) => selected(name));
    // What a record holds in memory while it is checked: its stored tensors and the original.
    const weigh = ([name, rec]: [string, TensorRecord]) =>
      storedOf(name, rec, layout).reduce((n, x) => n + (infos.get(x.name)?.byteLength ?? 0), 0) + (originals.get(name)?.byteLength ?? 0);
    pool = readBackPool(opts, records.reduce((n, r) => n + weigh(r), 0), original ? undefined : MIN_PARALLEL_CHECK_BYTES);
    const checker = recordChecker(pool);
    // Records are checked a few at a time (on the workers, while the next are read) and reported in order.
    const started = new Map<string, TensorVerdict>();
    await inOrder(
      records,
      inFlight(pool, records, weigh),
      ([name, rec]) => {
        const v: TensorVerdict = { name, mode: rec.mode, problems: [], gate_failures: [], ok: true };
        started.set(name, v);
        return checkRecord({ reader, infos, layout, original, originals, thresholds, againstPath: opts.against, histogramBins: opts.histogramBins, exact: !!opts.exact, checker }, name, rec, v);
      },
      (checked, [name]) => {
        const v = started.get(name)!;
        started.delete(name);
        hashes += checked;
        v.ok = v.problems.length === 0 && v.gate_failures.length === 0;
        verdicts.push(v);
        onTensor?.(v);
      },
    );
    if (verdicts.length === 0 && patterns.length > 0) throw new KquantError({ file: path, what: `no tensor matches ${opts.filter!.join(", ")}` });

    return verifyReport(path, opts.against, thresholds, fileProblems, verdicts, hashes, others.checked);
  } finally {
    await pool?.close();
    await reader.close();
    await original?.close();
  }
}

/** What checking a record needs besides the record: the files, the thresholds, where the work runs. */
interface CheckContext {
  reader: TensorReader;
  infos: ReadonlyMap<string, TensorInfo>;
  layout: Layout;
  original: TensorReader | undefined;
  originals: ReadonlyMap<string, TensorInfo>;
  thresholds: Thresholds;
  againstPath: string | undefined;
  histogramBins: number | undefined;
  exact: boolean;
  checker: RecordChecker;
}

/** Checks one record into `v`: shapes here, the rest where `checker` runs; returns how many stored hashes it compared. */
async function checkRecord(ctx: CheckContext, name: string, rec: TensorRecord, v: TensorVerdict): Promise<number> {
  const { reader, infos, layout, original, checker } = ctx;
  const expected = storedOf(name, rec, layout);
  let shapesOk = true;
  for (const e of expected) {
    const info = infos.get(e.name);
    if (info === undefined) {
      v.problems.push(`${e.role} tensor "${e.name}" is missing from the file`);
      shapesOk = false;
    } else if (info.dtype !== e.dtype || !sameShape(info.shape, e.shape)) {
      v.problems.push(`${e.role} tensor "${e.name}" is ${info.dtype} [${info.shape}], the manifest needs ${e.dtype} [${e.shape}]`);
      shapesOk = false;
    }
  }
  if (!shapesOk) return 0;

  // The bytes land where the checker wants them (shared memory for a worker thread).
  const stored: [string, Uint8Array][] = [];
  for (const e of expected) stored.push([e.name, await reader.read(e.name, checker.buffer?.(infos.get(e.name)!.byteLength))]);
  let against: RecordBytes["original"];
  if (original) {
    const orig = ctx.originals.get(name);
    if (orig === undefined) against = { problem: `not in the original ${ctx.againstPath}` };
    else if (orig.dtype !== rec.source_dtype || !sameShape(orig.shape, rec.shape)) {
      against = { problem: `the original is ${orig.dtype} [${orig.shape}], the manifest says the source was ${rec.source_dtype} [${rec.shape}]` };
    } else against = { dtype: orig.dtype, bytes: await original.read(name, checker.buffer?.(orig.byteLength)) };
  }
  const checked = await checker({
    name,
    rec,
    layout: layout.name,
    stored,
    ...(against ? { original: against } : {}),
    ...(ctx.histogramBins !== undefined ? { histogramBins: ctx.histogramBins } : {}),
    ...(ctx.exact ? { exact: true } : {}),
  });
  for (const p of checked.problems) v.problems.push(p);
  if (checked.metrics) {
    v.metrics = checked.metrics;
    if (checked.histogram) v.error_histogram = checked.histogram;
    for (const g of gateFailures(v.metrics, ctx.thresholds, rec.mode)) v.gate_failures.push(g);
  }
  return checked.hashes;
}

