/**
 * The checks of one kquant record that need its bytes (shapes already checked): stored hashes,
 * contents that make sense (scales finite and positive, codes in range, int4 padding zero, no NaN
 * float8 codes), what a layout derives, and against the original its source hash and the error.
 * Pure data in and out, so that a worker thread runs them as well as the main thread.
 */
import { scaleProblem } from "../../modes/code-checks.js";
import type { StDType } from "../../formats/types.js";
import { layoutNamed } from "../../layouts/index.js";
import type { Layout, LayoutName } from "../../layouts/layout.js";
import { modeNamed } from "../../modes/registry.js";
import type { StoredGeometry, StoredRole } from "../../plan/stored.js";
import { exactProblems } from "./exact.js";
import { errorHistogram, type ErrorHistogram } from "../../quant/error-histogram.js";
import { blockSums, ErrorAccumulator, type BlockSums, type ErrorMetrics } from "../../quant/error-metrics.js";
import { FLOAT_DTYPES, floatValues } from "../float-values.js";
import { hashHex } from "../hash.js";
import { geometryOf, hashesOf, storedOf, type ExpectedTensor, type TensorRecord } from "../manifest.js";
import { dequantizedBlockCount, dequantizedBlocks, type StoredParts } from "./record-values.js";


const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

const f32 = (b: Uint8Array) => {
  const a = b.byteOffset % 4 === 0 ? b : b.slice();
  return new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
};

/** What is wrong with the contents of one record's stored tensors (shapes already checked): the scale here, the codes by the mode. */
export function contentProblems(rec: TensorRecord, expected: readonly ExpectedTensor[], parts: StoredParts): string[] {
  const mode = modeNamed(rec.mode);
  const problems: string[] = [];
  const tag = (role: string, msg: string | null) => {
    if (msg !== null) problems.push(`${role} "${expected.find((e) => e.role === role)!.name}": ${msg}`);
  };
  tag("scale", scaleProblem(f32(parts.scale)));
  const valueRange = rec.value_range ?? mode.defaults().valueRange;
  const facts = {
    valuesShape: expected.find((e) => e.role === "values")!.shape,
    ...(valueRange !== undefined ? { valueRange } : {}),
    ...(rec.pack_axis !== undefined ? { packAxis: rec.pack_axis } : {}),
    ...(rec.orig_len !== undefined ? { origLen: rec.orig_len } : {}),
  };
  for (const [role, msg] of mode.codeProblems(parts, facts)) tag(role, msg);
  return problems;
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
  /**
   * Only a share of the measurement (a record too large to check on one thread, verify.ts): the
   * error sums of dequantized blocks [from, to), or with `limit` their histogram counts. No checks.
   */
  share?: { from: number; to: number; limit?: number };
  /** false: the checks only; the caller measures (in shares). */
  measure?: boolean;
  /** With an original: also re-derive the stored bytes from it and compare them byte for byte (exact.ts). */
  exact?: boolean;
}

/** What checkRecordBytes found: problems, hashes compared, and against an original the error. */
export interface RecordFindings {
  problems: string[];
  /** Stored hashes compared. */
  hashes: number;
  metrics?: ErrorMetrics;
  histogram?: ErrorHistogram;
  /** With `measure: false`: whether the record may be measured (no problems, comparable values). */
  measurable?: boolean;
  /** With a `share`: the blocks' error sums in order, or their histogram counts. */
  sums?: BlockSums[];
  counts?: number[];
}

/** checkRecordBytes, here or on a worker thread (parallel-read-back.ts), with where it wants the bytes read to. */
export type RecordChecker = ((input: RecordBytes) => Promise<RecordFindings>) & { buffer?: (bytes: number) => Uint8Array };

/**
 * The checks that need a record's bytes (shapes already checked): hashes, contents, what a layout
 * derives, and against the original its source hash and the error.
 */
export async function checkRecordBytes(input: RecordBytes): Promise<RecordFindings> {
  if (input.share) return measureShare(input, input.share);
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
  if (parts) for (const p of contentProblems(rec, expected, parts)) problems.push(p);
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
  if (input.exact && parts && FLOAT_DTYPES.has(orig.dtype)) {
    const storedName = (role: string) => expected.find((e) => e.role === role)?.name ?? role;
    for (const p of exactProblems(name, rec, layout, orig, bytes as Map<StoredRole, Uint8Array>, storedName)) problems.push(p);
  }
  if ((!parts && !decoded) || problems.length > 0) return { problems, hashes };
  if (!FLOAT_DTYPES.has(orig.dtype)) return { problems: [...problems, `the original's dtype ${orig.dtype} cannot be compared`], hashes };
  if (input.measure === false) return { problems, hashes, measurable: true };
  const pairs = comparison(orig, rec, decoded, parts);
  const acc = new ErrorAccumulator();
  for (const [reference, approx] of pairs()) acc.add(reference, approx);
  const metrics = acc.result();
  if (input.histogramBins === undefined || !Number.isFinite(metrics.maxAbsError)) return { problems, hashes, metrics };
  // A second pass: the bins span the max error, known only now (counts add up block by block).
  const counts = histogramCounts(pairs(), metrics.maxAbsError, input.histogramBins);
  return { problems, hashes, metrics, histogram: { limit: metrics.maxAbsError, counts } };
}

/** The (original, dequantized) float32 pairs of a record, block of rows by block (record-values.ts), the blocks of `range` only if given. */
type Pairs = (range?: [number, number]) => Generator<[Float32Array, Float32Array]>;

/** Block by block, the original decoded alongside: no float32 copy of either whole tensor (but a layout's own whole decoding). */
function comparison(orig: { dtype: StDType; bytes: Uint8Array }, rec: TensorRecord, decoded: { values: Float32Array } | null, parts: StoredParts | null): Pairs {
  const { dtype, bytes } = orig;
  const width = bytes.length / Math.max(1, rec.shape.reduce((a, b) => a * b, 1));
  let scratch: Float32Array | undefined;
  return function* (range) {
    const blocks: Iterable<[number, number, Float32Array]> = decoded ? [[0, decoded.values.length, decoded.values]] : dequantizedBlocks(rec, parts!, undefined, undefined, undefined, range);
    for (const [from, to, approx] of blocks) {
      const reference = floatValues(dtype, bytes.subarray(from * width, to * width), scratch)!;
      if (dtype !== "F32") scratch = reference;
      yield [reference, approx];
    }
  };
}

/** The counts of an error histogram of `limit` over the pairs (integers: the order they add up in does not matter). */
function histogramCounts(pairs: Iterable<[Float32Array, Float32Array]>, limit: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  for (const [reference, approx] of pairs) errorHistogram(reference, approx, limit, bins).counts.forEach((c, i) => (counts[i]! += c));
  return counts;
}

/** How many blocks a record's comparison walks (the shares split them). */
export function comparisonBlocks(rec: TensorRecord): number {
  return dequantizedBlockCount(rec);
}

/** A share of a record's measurement (RecordBytes.share): no checks, the caller made them. */
function measureShare(input: RecordBytes, share: { from: number; to: number; limit?: number }): RecordFindings {
  const layout = layoutNamed(input.layout);
  const orig = input.original as { dtype: StDType; bytes: Uint8Array };
  const data = new Map(input.stored);
  const byRole = new Map(storedOf(input.name, input.rec, layout).map((e) => [e.role, data.get(e.name)!]));
  const parts: StoredParts = { values: byRole.get("values")!, scale: byRole.get("scale")!, ...(byRole.has("zero") ? { zero: byRole.get("zero")! } : {}) };
  const pairs = comparison(orig, input.rec, null, parts)([share.from, share.to]);
  if (share.limit !== undefined) return { problems: [], hashes: 0, counts: histogramCounts(pairs, share.limit, input.histogramBins!) };
  const sums: BlockSums[] = [];
  for (const [reference, approx] of pairs) for (const s of blockSums(reference, approx)) sums.push(s);
  return { problems: [], hashes: 0, sums };
}

/** A layout's runtime dequantize of one record, and a problem if it holds non-finite values; null for layouts that store kquant's tensors verbatim. */
function layoutDequantized(layout: Layout, name: string, rec: TensorRecord, bytes: ReadonlyMap<string, Uint8Array>): { values: Float32Array; problem?: string } | null {
  if (!layout.dequantize) return null;
  const values = layout.dequantize({ name, dtype: rec.source_dtype, shape: rec.shape }, geometryOf(rec) as StoredGeometry, bytes);
  const bad = values.findIndex((x) => !Number.isFinite(x));
  return bad < 0 ? { values } : { values, problem: `the ${layout.name} layout's dequantized values are not finite (first at index ${bad})` };
}
