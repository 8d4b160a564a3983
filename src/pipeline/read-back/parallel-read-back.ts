/**
 * Read-back on worker threads: `verify` and `dequantize` hand each record's bytes, read into
 * SharedArrayBuffers, to the quantize workers (workers.ts), which hash, check and dequantize them
 * while the main thread reads the next records. Records are finished and reported in manifest
 * order; a few are in flight at once (`inFlight`), so memory stays at a few tensors' bytes.
 */
import { DEFAULT_WORKER_URL, defaultThreads, WorkerPool, workerAvailable } from "../workers.js";
import type { TensorRecord } from "../manifest.js";
import { checkRecordBytes, type RecordBytes, type RecordChecker, type RecordFindings } from "./check-record.js";
import { dequantizeBytes, type FloatOut, type StoredParts } from "./record-values.js";

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

/** The pool for a read-back of `totalBytes`, or null to work on this thread. */
export function readBackPool(opts: ReadBackThreads, totalBytes: number): WorkerPool | null {
  const small = totalBytes < MIN_PARALLEL_BYTES && process.env.KQUANT_THREADS === undefined;
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

  /** `n` bytes, in the smallest free buffer that holds them or a new one. */
  take(n: number): Uint8Array {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i]!.byteLength;
      if (size >= n && (best < 0 || size < this.free[best]!.byteLength)) best = i;
    }
    const buf = best >= 0 ? this.free.splice(best, 1)[0]! : new SharedArrayBuffer(n);
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
      const r = await pool.run({ kind: "verify-record", input });
      return (r as { kind: "verify-record"; findings: RecordFindings }).findings;
    } finally {
      buffers.give([...input.stored.map(([, b]) => b), ...(input.original && "bytes" in input.original ? [input.original.bytes] : [])]);
    }
  };
  return Object.assign(check, { buffer: (n: number) => buffers.take(n) });
}

/**
 * dequantizeBytes on the pool's workers, or here without one, in reused buffers: `buffer` is where
 * to read the stored tensors, and `done(bytes)` hands back the memory of output bytes once written.
 */
export function recordDequantizer(pool: WorkerPool | null): {
  (rec: TensorRecord, parts: StoredParts, dtype: FloatOut, outBytes: number): Promise<Uint8Array>;
  buffer: (bytes: number) => Uint8Array;
  done(bytes: Uint8Array): void;
} {
  const buffers = new SharedBuffers();
  const run = async (rec: TensorRecord, parts: StoredParts, dtype: FloatOut, outBytes: number): Promise<Uint8Array> => {
    const out = buffers.take(outBytes);
    try {
      if (pool === null) dequantizeBytes(rec, parts, dtype, out);
      else await pool.run({ kind: "dequantize-record", rec, parts, dtype, out });
    } catch (err) {
      buffers.give([out]);
      throw err;
    } finally {
      buffers.give([parts.values, parts.scale, ...(parts.zero ? [parts.zero] : [])]);
    }
    return out;
  };
  return Object.assign(run, { buffer: (n: number) => buffers.take(n), done: (bytes: Uint8Array) => buffers.give([bytes]) });
}

/** Records in flight at once: one per worker and one being read, or one at a time without workers. */
export const inFlight = (pool: WorkerPool | null): number => (pool === null ? 1 : pool.size + 1);

/**
 * Runs `start(item)` for the items in order with at most `limit` running, and `finish` on each
 * result in order. After a failure nothing new starts, and the first failure in order is thrown
 * once those running have settled (none is left unobserved).
 */
export async function inOrder<T, R>(
  items: Iterable<T>,
  limit: number,
  start: (item: T) => Promise<R>,
  finish: (result: R, item: T) => void | Promise<void>,
): Promise<void> {
  const running: { item: T; done: Promise<R> }[] = [];
  const next = async () => {
    const { item, done } = running.shift()!;
    try {
      await finish(await done, item);
    } catch (err) {
      await Promise.allSettled(running.map((r) => r.done));
      throw err;
    }
  };
  for (const item of items) {
    const done = start(item);
    done.catch(() => undefined);
    running.push({ item, done });
    if (running.length >= limit) await next();
  }
  while (running.length > 0) await next();
}
