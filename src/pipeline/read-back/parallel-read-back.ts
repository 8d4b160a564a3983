/**
 * Read-back on worker threads: `verify`, `dequantize` and `inspect --stats` hand each record's bytes, read into
 * SharedArrayBuffers, to the quantize workers (workers.ts), which hash, check and dequantize them
 * while the main thread reads the next records. Records are finished and reported in manifest
 * order; a few are in flight at once (`inFlight`), so memory stays at a few tensors' bytes.
 */
import { DEFAULT_WORKER_URL, defaultThreads, WorkerPool, workerAvailable } from "../workers.js";
import type { TensorRecord } from "../manifest.js";
import { checkRecordBytes, comparisonBlocks, type RecordBytes, type RecordChecker, type RecordFindings } from "./check-record.js";
import { layoutNamed } from "../../layouts/index.js";
import { ErrorAccumulator } from "../../quant/error-metrics.js";
import { dequantizeBytes, layoutDequantizeBytes, type FloatOut, type StoredParts } from "./record-values.js";
import type { LayoutName } from "../../layouts/layout.js";
import { tensorStatsOf, type TensorStats } from "./stats.js";
import type { StDType } from "../../formats/types.js";
import { tensorBuffer } from "../../formats/io.js";

const MiB = 1024 * 1024;

/** Where read-back runs: worker threads, and the script they start from. */
export interface ReadBackThreads {
  /** Worker threads (default: KQUANT_THREADS or one per core, at most 4); 0 works on the calling thread. */
  threads?: number;
  /** The worker script (default: the compiled worker beside workers.ts). */
  workerUrl?: URL;
}

/**
 * Below this many bytes of tensors the workers' start costs more than they save (as for quantize,
 * run-quantize.ts), unless --threads or KQUANT_THREADS says otherwise.
 */
const MIN_PARALLEL_BYTES = 8 * 1024 * 1024;

/**
 * Integrity checks alone (`verify` without --against: hashes and byte ranges, ~0.6 ms per MiB on
 * one thread here) win back the workers' start (~40 ms of wall time before their first record)
 * only on larger files: measured on 2 cores, 64 MiB of stored tensors verify in 120 ms on the
 * calling thread and 145 ms on two workers, 514 MiB in 386 ms and 319 ms.
 */
export const MIN_PARALLEL_CHECK_BYTES = 128 * 1024 * 1024;

/**
 * The pool for a read-back of `totalBytes`, or null to work on this thread: by default, threads
 * only from `minParallelBytes` (8 MiB; see MIN_PARALLEL_CHECK_BYTES for integrity checks alone).
 */
export function readBackPool(opts: ReadBackThreads, totalBytes: number, minParallelBytes = MIN_PARALLEL_BYTES): WorkerPool | null {
  const small = totalBytes < minParallelBytes && process.env.KQUANT_THREADS === undefined;
  const threads = opts.threads ?? (small ? 0 : defaultThreads());
  const url = opts.workerUrl ?? DEFAULT_WORKER_URL;
  if (threads < 1 || !workerAvailable(url)) return null;
  return new WorkerPool(threads, url, { depth: 1 });
}

/**
 * Shared memory for records' bytes, reused: a reader fills it, a worker sees it without a copy,
 * and it returns here once the worker is done. A fresh SharedArrayBuffer per tensor left hundreds
 * of MiB to the garbage collector (measured: verify's peak RSS tripled).
 */
export class SharedBuffers {
  private readonly free: SharedArrayBuffer[] = [];

  /** `n` bytes, in the smallest free buffer that holds them or a new one (named `whose` when it cannot be had). */
  take(n: number, whose?: { file: string; name: string }): Uint8Array {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i]!.byteLength;
      if (size >= n && (best < 0 || size < this.free[best]!.byteLength)) best = i;
    }
    const buf = best >= 0 ? this.free.splice(best, 1)[0]! : tensorBuffer(n, whose?.file ?? "", whose?.name ?? "", true);
    return new Uint8Array(buf, 0, n);
  }

  /** Hands back the buffers under `views` (others are left alone). */
  give(views: readonly Uint8Array[]): void {
    for (const v of views) if (v.buffer instanceof SharedArrayBuffer && !this.free.includes(v.buffer)) this.free.push(v.buffer);
  }
}

/**
 * checkRecordBytes on the pool's workers, or here without one. Either way the bytes are read into
 * reused buffers: fresh ones per record left the garbage collector a tensor's worth each time.
 */
export function recordChecker(pool: WorkerPool | null): RecordChecker {
  const buffers = new SharedBuffers();
  const check = async (input: RecordBytes): Promise<RecordFindings> => {
    try {
      if (pool === null) return await checkRecordBytes(input);
      if (shared(pool, input)) return await checkInShares(pool, input);
      const r = await pool.run({ kind: "verify-record", input });
      return (r as { kind: "verify-record"; findings: RecordFindings }).findings;
    } finally {
      buffers.give([...input.stored.map(([, b]) => b), ...(input.original && "bytes" in input.original ? [input.original.bytes] : [])]);
    }
  };
  return Object.assign(check, { buffer: (n: number, whose?: { file: string; name: string }) => buffers.take(n, whose) });
}

/** An original this large is measured by every worker, a share of its blocks each (it is alone in flight, inFlight). */
const SHARED_BYTES = 32 * MiB;

function shared(pool: WorkerPool, input: RecordBytes): boolean {
  const o = input.original;
  return (
    pool.size > 1 && o !== undefined && "bytes" in o && o.bytes.length >= SHARED_BYTES && input.rec.mode !== "passthrough" && !layoutNamed(input.layout).dequantize && comparisonBlocks(input.rec) > 1
  );
}

/**
 * One record on every worker: the checks on one, the error sums of its blocks in shares on all,
 * added in block order (the bits of one thread's pass), then the histogram the same way.
 */
async function checkInShares(pool: WorkerPool, input: RecordBytes): Promise<RecordFindings> {
  const blocks = comparisonBlocks(input.rec);
  const per = Math.ceil(blocks / pool.size);
  const shares: [number, number][] = [];
  for (let from = 0; from < blocks; from += per) shares.push([from, Math.min(blocks, from + per)]);
  const run = async (task: RecordBytes) => ((await pool.run({ kind: "verify-record", input: task })) as { kind: "verify-record"; findings: RecordFindings }).findings;
  const [checked, ...sums] = await Promise.all([run({ ...input, measure: false }), ...shares.map(([from, to]) => run({ ...input, share: { from, to } }))]);
  if (!checked.measurable) return checked;
  const acc = new ErrorAccumulator();
  for (const s of sums) for (const b of s.sums!) acc.addSums(b);
  const metrics = acc.result();
  const findings: RecordFindings = { problems: checked.problems, hashes: checked.hashes, metrics };
  if (input.histogramBins === undefined || !Number.isFinite(metrics.maxAbsError)) return findings;
  const counted = await Promise.all(shares.map(([from, to]) => run({ ...input, share: { from, to, limit: metrics.maxAbsError } })));
  const counts = new Array<number>(input.histogramBins).fill(0);
  for (const c of counted) c.counts!.forEach((x, i) => (counts[i]! += x));
  return { ...findings, histogram: { limit: metrics.maxAbsError, counts } };
}

/**
 * dequantizeBytes on the pool's workers, or here without one, in reused buffers: `buffer` is where
 * to read the stored tensors, and `done(bytes)` hands back the memory of output bytes once written.
 * `layout` does the same for a layout that re-encodes (layoutDequantizeBytes: its runtime's values
 * from the written tensors, [name, bytes] pairs read into `buffer`).
 */
export function recordDequantizer(pool: WorkerPool | null): {
  (rec: TensorRecord, parts: StoredParts, dtype: FloatOut, outBytes: number): Promise<Uint8Array>;
  layout(layout: LayoutName, name: string, rec: TensorRecord, written: [string, Uint8Array][], dtype: FloatOut, outBytes: number): Promise<Uint8Array>;
  buffer: (bytes: number) => Uint8Array;
  done(bytes: Uint8Array): void;
} {
  const buffers = new SharedBuffers();
  /** `work` into a reused output buffer; the input buffers `held` go back either way, the output on failure. */
  const produce = async (outBytes: number, held: readonly Uint8Array[], work: (out: Uint8Array) => unknown): Promise<Uint8Array> => {
    const out = buffers.take(outBytes);
    try {
      await work(out);
    } catch (err) {
      buffers.give([out]);
      throw err;
    } finally {
      buffers.give(held);
    }
    return out;
  };
  const run = (rec: TensorRecord, parts: StoredParts, dtype: FloatOut, outBytes: number) =>
    produce(outBytes, [parts.values, parts.scale, ...(parts.zero ? [parts.zero] : [])], (out) =>
      pool === null ? dequantizeBytes(rec, parts, dtype, out) : pool.run({ kind: "dequantize-record", rec, parts, dtype, out }),
    );
  const layout = (layout: LayoutName, name: string, rec: TensorRecord, written: [string, Uint8Array][], dtype: FloatOut, outBytes: number) =>
    produce(outBytes, written.map(([, b]) => b), (out) =>
      pool === null ? layoutDequantizeBytes(layout, name, rec, written, dtype, out) : pool.run({ kind: "dequantize-layout-record", layout, name, rec, written, dtype, out }),
    );
  return Object.assign(run, { layout, buffer: (n: number) => buffers.take(n), done: (bytes: Uint8Array) => buffers.give([bytes]) });
}

/**
 * tensorStatsOf on the pool's workers, or here without one, with the bytes read into reused
 * buffers (`buffer`).
 */
export function statsComputer(pool: WorkerPool | null): ((dtype: StDType, bytes: Uint8Array, bins: number) => Promise<TensorStats>) & { buffer: (bytes: number, whose?: { file: string; name: string }) => Uint8Array } {
  const buffers = new SharedBuffers();
  const compute = async (dtype: StDType, bytes: Uint8Array, bins: number): Promise<TensorStats> => {
    try {
      if (pool === null) return tensorStatsOf(dtype, bytes, bins);
      return ((await pool.run({ kind: "stats", dtype, bytes, bins })) as { kind: "stats"; stats: TensorStats }).stats;
    } finally {
      buffers.give([bytes]);
    }
  };
  return Object.assign(compute, { buffer: (n: number, whose?: { file: string; name: string }) => buffers.take(n, whose) });
}

/** How much read-back holds at once: records, and the bytes they weigh (their tensors in memory). */
export interface FlightLimit<T> {
  count: number;
  bytes: number;
  weigh: (item: T) => number;
}


/**
 * One record per worker and one being read (one at a time without workers), as long as they weigh
 * at most 1.5 × the heaviest record + 32 MiB together: records of small tensors go a few at a
 * time, records of large ones (hundreds of MiB) one at a time, so read-back stays within the
 * memory bound (2 × the largest tensor + 150 MiB) whatever the tensor sizes. `minBytes` raises the
 * weight allowed, for a caller whose records hold nothing but the tensor itself.
 */
export function inFlight<T>(pool: WorkerPool | null, items: readonly T[], weigh: (item: T) => number, minBytes = 0): FlightLimit<T> {
  const heaviest = items.reduce((m, item) => Math.max(m, weigh(item)), 0);
  return { count: pool === null ? 1 : pool.size + 1, bytes: Math.max(minBytes, 1.5 * heaviest + 32 * MiB), weigh };
}

/**
 * Runs `start(item)` for the items in order within `limit` (a count and a weight; an item that
 * outweighs the limit alone still runs, alone), and `finish` on each result in order. After a
 * failure nothing new starts, and the first failure in order is thrown once those running have
 * settled (none is left unobserved).
 */
export async function inOrder<T, R>(
  items: Iterable<T>,
  limit: FlightLimit<T> | number,
  start: (item: T) => Promise<R>,
  finish: (result: R, item: T) => void | Promise<void>,
): Promise<void> {
  const { count, bytes, weigh } = typeof limit === "number" ? { count: limit, bytes: Infinity, weigh: () => 0 } : limit;
  const running: { item: T; weight: number; done: Promise<R> }[] = [];
  let held = 0;
  const next = async () => {
    const { item, weight, done } = running.shift()!;
    held -= weight;
    try {
      await finish(await done, item);
    } catch (err) {
      await Promise.allSettled(running.map((r) => r.done));
      throw err;
    }
  };
  for (const item of items) {
    const weight = weigh(item);
    while (running.length > 0 && (running.length >= count || held + weight > bytes)) await next();
    const done = start(item);
    done.catch(() => undefined);
    running.push({ item, weight, done });
    held += weight;
  }
  while (running.length > 0) await next();
}
