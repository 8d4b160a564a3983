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
import type { StDType, TensorInfo, TensorReader } from "../../formats/types.js";
import { globToRegExp, matchesAny } from "../../plan/glob.js";
import { isFloat8, isInt4, type Mode } from "../../plan/spec.js";
import { ErrorAccumulator, type ErrorMetrics } from "../../quant/error-metrics.js";
import type { StoredGeometry } from "../../plan/stored.js";
import { geometryOf, readManifest, type ExpectedTensor, type StoredParts } from "./dequantize.js";
import { hashHex } from "../hash.js";
import { hashesOf, layoutOf, storedOf, type TensorRecord } from "../manifest.js";
import type { Layout, LayoutName } from "../../layouts/layout.js";
import { layoutNamed } from "../../layouts/index.js";
import { FLOAT_DTYPES, floatValues } from "../float-values.js";
import { errorHistogram, type ErrorHistogram } from "../../quant/error-histogram.js";
import { dequantizedBlocks } from "./row-blocks.js";
import { inFlight, inOrder, readBackPool, recordChecker, type ReadBackThreads } from "./parallel-read-back.js";
import type { WorkerPool } from "../workers.js";

export interface Thresholds {
  minSqnr?: number;
  minCosine?: number;
  maxAbsError?: number;
}

export interface VerifyOptions extends Thresholds, ReadBackThreads {
  against?: string;
  filter?: string[];
  /** With `against`: also count each measured tensor's errors into this many bins (for the HTML report). */
  histogramBins?: number;
}

export interface TensorVerdict {
  name: string;
  mode: Mode | "passthrough";
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
    min_sqnr_db: number | null;
    mean_sqnr_db: number | null;
    min_cosine: number | null;
    max_abs_error: number | null;
  };
  ok: boolean;
}

const DEFAULT_RANGE: Record<Mode, [number, number]> = {
  int8: [-127, 127],
  int4: [-8, 7],
  int4_grouped: [-8, 7],
  float8_e4m3fn: [0, 0],
  float8_e5m2: [0, 0],
};

/** int8 codes outside [lo, hi]: how many and the first one. */
function outsideRange(codes: Int8Array, lo: number, hi: number): string | null {
  let count = 0;
  let first = -1;
  for (let i = 0; i < codes.length; i++) {
    const v = codes[i]!;
    if (v < lo || v > hi) {
      if (count === 0) first = i;
      count++;
    }
  }
  return count === 0 ? null : `${count} code(s) outside [${lo}, ${hi}] (first at index ${first}: ${codes[first]})`;
}

/** Both nibbles of every packed byte inside [lo, hi], and the padding nibble zero when the packed axis had odd length. */
function int4Problems(packed: Int8Array, packedShape: readonly number[], packAxis: number, origLen: number, lo: number, hi: number): string[] {
  const outer = packedShape.slice(0, packAxis).reduce((a, b) => a * b, 1);
  const p = packedShape[packAxis]!;
  const inner = packedShape.slice(packAxis + 1).reduce((a, b) => a * b, 1);
  const padded = origLen % 2 === 1;
  let bad = 0;
  let firstBad = -1;
  let badPadding = 0;
  let firstPadding = -1;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < p; j++) {
      const lastRow = padded && j === p - 1;
      const base = (o * p + j) * inner;
      for (let k = 0; k < inner; k++) {
        const b = packed[base + k]! & 0xff;
        const low = ((b & 0x0f) ^ 8) - 8;
        const high = ((b >> 4) ^ 8) - 8;
        if (low < lo || low > hi || (!lastRow && (high < lo || high > hi))) {
          if (bad++ === 0) firstBad = base + k;
        }
        if (lastRow && high !== 0) {
          if (badPadding++ === 0) firstPadding = base + k;
        }
      }
    }
  }
  const out: string[] = [];
  if (bad > 0) out.push(`${bad} packed byte(s) hold a nibble outside [${lo}, ${hi}] (first at byte ${firstBad}: 0x${(packed[firstBad]! & 0xff).toString(16).padStart(2, "0")})`);
  if (badPadding > 0) out.push(`${badPadding} padding nibble(s) are not zero (orig_len ${origLen} is odd; first at byte ${firstPadding})`);
  return out;
}

function scaleProblem(scale: Float32Array): string | null {
  let count = 0;
  let first = -1;
  for (let i = 0; i < scale.length; i++) {
    const s = scale[i]!;
    if (!(s > 0 && s < Infinity)) {
      if (count === 0) first = i;
      count++;
    }
  }
  return count === 0 ? null : `${count} of ${scale.length} scale value(s) are not finite and positive (first at index ${first}: ${scale[first]})`;
}

function float8Problem(codes: Uint8Array, mode: "float8_e4m3fn" | "float8_e5m2"): string | null {
  const mask = mode === "float8_e4m3fn" ? 0x7f : 0x7c;
  let count = 0;
  let first = -1;
  for (let i = 0; i < codes.length; i++) {
    if ((codes[i]! & mask) === mask) {
      if (count === 0) first = i;
      count++;
    }
  }
  const what = mode === "float8_e4m3fn" ? "NaN" : "NaN or Inf";
  return count === 0 ? null : `${count} ${what} code(s) (first at index ${first}: 0x${codes[first]!.toString(16)})`;
}

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

const i8 = (b: Uint8Array) => new Int8Array(b.buffer, b.byteOffset, b.byteLength);
const f32 = (b: Uint8Array) => {
  const a = b.byteOffset % 4 === 0 ? b : b.slice();
  return new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
};

/** What is wrong with the contents of one record's stored tensors (shapes already checked). */
export function contentProblems(rec: TensorRecord, expected: readonly ExpectedTensor[], parts: StoredParts): string[] {
  const mode = rec.mode as Mode;
  const values = expected.find((e) => e.role === "values")!;
  const problems: string[] = [];
  const tag = (role: string, msg: string | null) => {
    if (msg !== null) problems.push(`${role} "${expected.find((e) => e.role === role)!.name}": ${msg}`);
  };
  tag("scale", scaleProblem(f32(parts.scale)));
  if (isFloat8(mode)) {
    tag("values", float8Problem(parts.values, mode));
    return problems;
  }
  const [lo, hi] = rec.value_range ?? DEFAULT_RANGE[mode];
  if (isInt4(mode)) {
    for (const p of int4Problems(i8(parts.values), values.shape, rec.pack_axis!, rec.orig_len!, lo, hi)) tag("values", p);
  } else {
    tag("values", outsideRange(i8(parts.values), lo, hi));
  }
  if (mode === "int4_grouped" && parts.zero) {
    // Keras's zero point lives in the signed range of the bit width value_range implies.
    const bits = Math.floor(Math.log2(hi - lo + 1));
    tag("zero", outsideRange(i8(parts.zero), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1));
  }
  return problems;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

function gateFailures(m: ErrorMetrics, t: Thresholds): string[] {
  const out: string[] = [];
  if (m.nonFiniteMismatches > 0) out.push(`${m.nonFiniteMismatches} value(s) non-finite on one side only`);
  if (t.minSqnr !== undefined && !(m.sqnrDb >= t.minSqnr)) out.push(`SQNR ${m.sqnrDb.toFixed(2)} dB < ${t.minSqnr}`);
  if (t.minCosine !== undefined && !(m.cosine >= t.minCosine)) out.push(`cosine ${m.cosine.toFixed(6)} < ${t.minCosine}`);
  if (t.maxAbsError !== undefined && !(m.maxAbsError <= t.maxAbsError)) out.push(`max abs error ${m.maxAbsError.toPrecision(4)} > ${t.maxAbsError}`);
  return out;
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
  const reader = await openTensors(path);
  let original: TensorReader | undefined;
  let pool: WorkerPool | null = null;
  try {
    const manifest = await readManifest(reader);
    if (manifest === null) throw new KquantError({ file: path, what: "no kquant manifest in __metadata__; not a kquant output, nothing to verify" });
    if (opts.against !== undefined) original = await openTensors(opts.against);
    const patterns = (opts.filter ?? []).map(globToRegExp);
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
    if (original && patterns.length === 0) {
      for (const t of original.tensors) {
        if (!(t.name in manifest.tensors)) fileProblems.push(`${opts.against}: tensor "${t.name}" is in the original but not in the quantized file`);
      }
    }

    const verdicts: TensorVerdict[] = [];
    let hashes = 0;
    const records = Object.entries(manifest.tensors).filter(([name]) => selected(name));
    const bytes = records.reduce((n, [name]) => n + (infos.get(name)?.byteLength ?? 0) + (originals.get(name)?.byteLength ?? 0), 0);
    pool = readBackPool(opts, bytes);
    const checker = recordChecker(pool);
    // Records are checked a few at a time (on the workers, while the next are read) and reported in order.
    const started = new Map<string, TensorVerdict>();
    await inOrder(
      records,
      inFlight(pool),
      ([name, rec]) => {
        const v: TensorVerdict = { name, mode: rec.mode, problems: [], gate_failures: [], ok: true };
        started.set(name, v);
        return checkRecord({ reader, infos, layout, original, originals, thresholds, againstPath: opts.against, histogramBins: opts.histogramBins, checker }, name, rec, v);
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

    const sqnrs = verdicts.flatMap((v) => (v.metrics ? [v.metrics.sqnrDb] : []));
    const finiteSqnrs = sqnrs.filter(Number.isFinite);
    const withMetrics = verdicts.flatMap((v) => (v.metrics ? [v.metrics] : []));
    const failed = verdicts.filter((v) => !v.ok).length;
    return {
      file: path,
      against: opts.against ?? null,
      thresholds,
      file_problems: fileProblems,
      tensors: verdicts,
      summary: {
        tensors: verdicts.length,
        quantized: verdicts.filter((v) => v.mode !== "passthrough").length,
        passthrough: verdicts.filter((v) => v.mode === "passthrough").length,
        failed,
        hashes_checked: hashes,
        min_sqnr_db: sqnrs.length ? Math.min(...sqnrs) : null,
        mean_sqnr_db: finiteSqnrs.length ? finiteSqnrs.reduce((a, b) => a + b, 0) / finiteSqnrs.length : null,
        min_cosine: withMetrics.length ? Math.min(...withMetrics.map((m) => m.cosine)) : null,
        max_abs_error: withMetrics.length ? Math.max(...withMetrics.map((m) => m.maxAbsError)) : null,
      },
      ok: failed === 0 && fileProblems.length === 0,
    };
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
  });
  v.problems.push(...checked.problems);
  if (checked.metrics) {
    v.metrics = checked.metrics;
    if (checked.histogram) v.error_histogram = checked.histogram;
    v.gate_failures.push(...gateFailures(v.metrics, ctx.thresholds));
  }
  return checked.hashes;
}

/** One record's bytes, as checkRecordBytes takes them (plain data, so a worker thread can take them too). */
export interface RecordBytes {
  name: string;
  rec: TensorRecord;
  layout: LayoutName;
  /** Every tensor the record's layout writes for it (manifest.ts storedOf), by name. */
  stored: [string, Uint8Array][];
  /** With --against: the original tensor, or why it cannot be compared. */
  original?: { dtype: StDType; bytes: Uint8Array } | { problem: string };
  /** With an original: also count the errors into this many bins. */
  histogramBins?: number;
}

export interface RecordFindings {
  problems: string[];
  /** Stored hashes compared. */
  hashes: number;
  metrics?: ErrorMetrics;
  histogram?: ErrorHistogram;
}

/** checkRecordBytes, here or on a worker thread (parallel-read-back.ts), with where it wants the bytes read to. */
export type RecordChecker = ((input: RecordBytes) => Promise<RecordFindings>) & { buffer?: (bytes: number) => Uint8Array };

/**
 * The checks that need a record's bytes (shapes already checked): hashes, contents, what a layout
 * derives, and against the original its source hash and the error.
 */
export async function checkRecordBytes(input: RecordBytes): Promise<RecordFindings> {
  const { name, rec } = input;
  const layout = layoutNamed(input.layout);
  const expected = storedOf(name, rec, layout);
  const problems: string[] = [];
  const data = new Map(input.stored);
  let hashes = 0;
  const bytes = new Map<string, Uint8Array>();
  const derived: [ExpectedTensor, Uint8Array][] = [];
  const { algorithm, hashes: recorded } = hashesOf(rec);
  for (const e of expected) {
    const stored = data.get(e.name)!;
    if (e.role === "derived") derived.push([e, stored]);
    else bytes.set(e.role, stored);
    const want = recorded?.stored?.[e.name];
    if (typeof want !== "string") {
      problems.push(`${e.role} tensor "${e.name}" has no ${algorithm} hash in the manifest`);
      continue;
    }
    hashes++;
    if ((await hashHex(stored, algorithm)) !== want) problems.push(`${e.role} tensor "${e.name}": ${algorithm} hash differs from the manifest (its bytes changed after quantization)`);
  }
  if (rec.mode === "passthrough" && recorded?.stored[name] !== recorded?.source) {
    problems.push(`passthrough tensor's stored and source ${algorithm} hashes differ in the manifest`);
  }
  // A layout that re-encodes is read back as its runtime reads it (its hashes guard the bytes).
  const decoded = rec.mode === "passthrough" ? null : layoutDequantized(layout, name, rec, data);
  if (decoded?.problem) problems.push(decoded.problem);
  const parts: StoredParts | null =
    rec.mode === "passthrough" || decoded
      ? null
      : { values: bytes.get("values")!, scale: bytes.get("scale")!, ...(bytes.has("zero") ? { zero: bytes.get("zero")! } : {}) };
  if (parts) problems.push(...contentProblems(rec, expected, parts));
  // A tensor the layout makes from the stored ones (or a constant) must be what it makes.
  for (const [e, stored] of derived) {
    if (parts && e.encode && !equalBytes(e.encode(parts), stored)) problems.push(`tensor "${e.name}" is not what the ${layout.name} layout makes from the stored tensors`);
  }

  const orig = input.original;
  if (orig === undefined) return { problems, hashes };
  if ("problem" in orig) return { problems: [...problems, orig.problem], hashes };
  if ((await hashHex(orig.bytes, algorithm)) !== recorded?.source) {
    problems.push(`the original's ${algorithm} hash differs from the manifest's source hash (not the file this was quantized from, or changed since)`);
  }
  if ((!parts && !decoded) || problems.length > 0) return { problems, hashes };
  if (!FLOAT_DTYPES.has(orig.dtype)) return { problems: [...problems, `the original's dtype ${orig.dtype} cannot be compared`], hashes };
  // Block by block (row-blocks.ts), the original decoded alongside: no float32 copy of either whole tensor.
  const { dtype: origDtype, bytes: origBytes } = orig;
  const width = origBytes.length / Math.max(1, rec.shape.reduce((a, b) => a * b, 1));
  let scratch: Float32Array | undefined;
  function* pairs(): Generator<[Float32Array, Float32Array]> {
    const blocks: Iterable<[number, number, Float32Array]> = decoded ? [[0, decoded.values.length, decoded.values]] : dequantizedBlocks(rec, parts!);
    for (const [from, to, approx] of blocks) {
      const reference = floatValues(origDtype, origBytes.subarray(from * width, to * width), scratch)!;
      if (origDtype !== "F32") scratch = reference;
      yield [reference, approx];
    }
  }
  const acc = new ErrorAccumulator();
  for (const [reference, approx] of pairs()) acc.add(reference, approx);
  const metrics = acc.result();
  if (input.histogramBins === undefined || !Number.isFinite(metrics.maxAbsError)) return { problems, hashes, metrics };
  // A second pass: the bins span the max error, known only now (counts add up block by block).
  let histogram: ErrorHistogram | undefined;
  for (const [reference, approx] of pairs()) {
    const h = errorHistogram(reference, approx, metrics.maxAbsError, input.histogramBins);
    if (histogram === undefined) histogram = h;
    else h.counts.forEach((c, i) => (histogram!.counts[i]! += c));
  }
  return { problems, hashes, metrics, ...(histogram ? { histogram } : {}) };
}

/** A layout's runtime dequantize of one record, and a problem if it holds non-finite values; null for layouts that store kquant's tensors verbatim. */
function layoutDequantized(layout: Layout, name: string, rec: TensorRecord, bytes: ReadonlyMap<string, Uint8Array>): { values: Float32Array; problem?: string } | null {
  if (!layout.dequantize) return null;
  const values = layout.dequantize({ name, dtype: rec.source_dtype, shape: rec.shape }, geometryOf(rec) as StoredGeometry, bytes);
  const bad = values.findIndex((x) => !Number.isFinite(x));
  return bad < 0 ? { values } : { values, problem: `the ${layout.name} layout's dequantized values are not finite (first at index ${bad})` };
}
