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
 * One record in memory at a time.
 */
import { KquantError } from "../../errors.js";
import { openTensors } from "../../formats/open.js";
import type { TensorInfo, TensorReader } from "../../formats/types.js";
import { globToRegExp, matchesAny } from "../../plan/glob.js";
import { isFloat8, isInt4, type Mode } from "../../plan/spec.js";
import { ErrorAccumulator, type ErrorMetrics } from "../../quant/error-metrics.js";
import type { StoredGeometry } from "../../plan/stored.js";
import { dequantizeRecord, geometryOf, readManifest, type ExpectedTensor, type StoredParts } from "./dequantize.js";
import { hashHex } from "../hash.js";
import { hashesOf, layoutOf, storedOf, type TensorRecord } from "../manifest.js";
import type { Layout } from "../../layouts/layout.js";
import { floatValues } from "../float-values.js";
import { errorHistogram, type ErrorHistogram } from "../../quant/error-histogram.js";

export interface Thresholds {
  minSqnr?: number;
  minCosine?: number;
  maxAbsError?: number;
}

export interface VerifyOptions extends Thresholds {
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
    for (const [name, rec] of Object.entries(manifest.tensors)) {
      if (!selected(name)) continue;
      const v: TensorVerdict = { name, mode: rec.mode, problems: [], gate_failures: [], ok: true };
      hashes += await checkRecord(reader, infos, layout, name, rec, v, original, originals, thresholds, opts.against, opts.histogramBins);
      v.ok = v.problems.length === 0 && v.gate_failures.length === 0;
      verdicts.push(v);
      onTensor?.(v);
    }
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
    await reader.close();
    await original?.close();
  }
}

/** Checks one record into `v`; returns how many stored hashes it compared. */
async function checkRecord(
  reader: TensorReader,
  infos: ReadonlyMap<string, TensorInfo>,
  layout: Layout,
  name: string,
  rec: TensorRecord,
  v: TensorVerdict,
  original: TensorReader | undefined,
  originals: ReadonlyMap<string, TensorInfo>,
  thresholds: Thresholds,
  againstPath: string | undefined,
  histogramBins: number | undefined,
): Promise<number> {
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

  let hashes = 0;
  const bytes = new Map<string, Uint8Array>();
  const derived: [ExpectedTensor, Uint8Array][] = [];
  const byName = new Map<string, Uint8Array>();
  const { algorithm, hashes: recorded } = hashesOf(rec);
  for (const e of expected) {
    const data = await reader.read(e.name);
    byName.set(e.name, data);
    if (e.role === "derived") derived.push([e, data]);
    else bytes.set(e.role, data);
    const want = recorded?.stored?.[e.name];
    if (typeof want !== "string") {
      v.problems.push(`${e.role} tensor "${e.name}" has no ${algorithm} hash in the manifest`);
      continue;
    }
    hashes++;
    if ((await hashHex(data, algorithm)) !== want) v.problems.push(`${e.role} tensor "${e.name}": ${algorithm} hash differs from the manifest (its bytes changed after quantization)`);
  }
  if (rec.mode === "passthrough" && recorded?.stored[name] !== recorded?.source) {
    v.problems.push(`passthrough tensor's stored and source ${algorithm} hashes differ in the manifest`);
  }
  // A layout that re-encodes is read back as its runtime reads it (its hashes guard the bytes).
  const decoded = rec.mode === "passthrough" ? null : layoutDequantized(layout, name, rec, byName);
  if (decoded?.problem) v.problems.push(decoded.problem);
  const parts: StoredParts | null =
    rec.mode === "passthrough" || decoded
      ? null
      : { values: bytes.get("values")!, scale: bytes.get("scale")!, ...(bytes.has("zero") ? { zero: bytes.get("zero")! } : {}) };
  if (parts) v.problems.push(...contentProblems(rec, expected, parts));
  // A tensor the layout makes from the stored ones (or a constant) must be what it makes.
  for (const [e, data] of derived) {
    if (parts && e.encode && !equalBytes(e.encode(parts), data)) v.problems.push(`tensor "${e.name}" is not what the ${layout.name} layout makes from the stored tensors`);
  }

  if (!original) return hashes;
  const orig = originals.get(name);
  if (orig === undefined) {
    v.problems.push(`not in the original ${againstPath}`);
    return hashes;
  }
  if (orig.dtype !== rec.source_dtype || !sameShape(orig.shape, rec.shape)) {
    v.problems.push(`the original is ${orig.dtype} [${orig.shape}], the manifest says the source was ${rec.source_dtype} [${rec.shape}]`);
    return hashes;
  }
  const origBytes = await original.read(name);
  if ((await hashHex(origBytes, algorithm)) !== recorded?.source) {
    v.problems.push(`the original's ${algorithm} hash differs from the manifest's source hash (not the file this was quantized from, or changed since)`);
  }
  if ((!parts && !decoded) || v.problems.length > 0) return hashes;
  const reference = floatValues(orig.dtype, origBytes);
  if (reference === null) {
    v.problems.push(`the original's dtype ${orig.dtype} cannot be compared`);
    return hashes;
  }
  const acc = new ErrorAccumulator();
  const approx = decoded ? decoded.values : dequantizeRecord(rec, parts!);
  acc.add(reference, approx);
  v.metrics = acc.result();
  if (histogramBins !== undefined && Number.isFinite(v.metrics.maxAbsError)) {
    v.error_histogram = errorHistogram(reference, approx, v.metrics.maxAbsError, histogramBins);
  }
  v.gate_failures.push(...gateFailures(v.metrics, thresholds));
  return hashes;
}

/** A layout's runtime dequantize of one record, and a problem if it holds non-finite values; null for layouts that store kquant's tensors verbatim. */
function layoutDequantized(layout: Layout, name: string, rec: TensorRecord, bytes: ReadonlyMap<string, Uint8Array>): { values: Float32Array; problem?: string } | null {
  if (!layout.dequantize) return null;
  const values = layout.dequantize({ name, dtype: rec.source_dtype, shape: rec.shape }, geometryOf(rec) as StoredGeometry, bytes);
  const bad = values.findIndex((x) => !Number.isFinite(x));
  return bad < 0 ? { values } : { values, problem: `the ${layout.name} layout's dequantized values are not finite (first at index ${bad})` };
}
