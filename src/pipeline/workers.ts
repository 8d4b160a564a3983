/**
 * A fixed pool of worker threads (worker-entry.ts) fed from one FIFO queue. Tasks only name byte
 * ranges of SharedArrayBuffers, so posting one costs nothing however large the tensor.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { KquantError, type KquantErrorFields } from "../errors.js";
import type { QuantizeStep } from "../plan/plan.js";
import type { RecordBytes, RecordFindings } from "./read-back/check-record.js";
import type { FloatOut, StoredParts } from "./read-back/record-values.js";
import type { TensorRecord } from "./manifest.js";
import type { LayoutName } from "../layouts/layout.js";
import type { StDType } from "../formats/types.js";
import type { TensorStats } from "./read-back/stats.js";
import type { BlockPart, FormatJob } from "./quantize/format-slice.js";

export interface SharedRange {
  buf: SharedArrayBuffer;
  offset: number;
  length: number;
}

export type Task =
  | { kind: "hash"; data: SharedRange }
  /** The next part of a hash fed in order on one worker; `final` answers the digest, else "". */
  | { kind: "hash-part"; stream: number; data: SharedRange; final: boolean }
  | { kind: "quantize"; step: QuantizeStep; source: SharedRange; outputs: SharedRange[]; allowNonFinite: boolean }
  /** The two passes of a tensor whose scale reduces over rows (quantize-tensor.ts): a slice's abs-max, */
  | { kind: "amax"; step: QuantizeStep; source: SharedRange; allowNonFinite: boolean }
  /** then its values with the whole tensor's float32 `scale`. */
  | { kind: "quantize-scaled"; step: QuantizeStep; source: SharedRange; scale: SharedRange; values: SharedRange }
  /** verify's checks of one record (read-back/check-record.ts checkRecordBytes), its bytes in shared memory. */
  | { kind: "verify-record"; input: RecordBytes }
  /** dequantize's work on one record (read-back/record-values.ts dequantizeBytes) into `out`. */
  | { kind: "dequantize-record"; rec: TensorRecord; parts: StoredParts; dtype: FloatOut; out: Uint8Array }
  /** dequantize's work on one record of a layout that re-encodes (record-values.ts layoutDequantizeBytes) into `out`. */
  | { kind: "dequantize-layout-record"; layout: LayoutName; name: string; rec: TensorRecord; written: [string, Uint8Array][]; dtype: FloatOut; out: Uint8Array }
  /** inspect --stats of one tensor's bytes (read-back/stats.ts tensorStatsOf). */
  | { kind: "stats"; dtype: StDType; bytes: Uint8Array; bins: number }
  /**
   * --scheme / --mlx on block `idx` of `n` of a weight of `rows` rows (quantize/format-slice.ts
   * formatBlock), `bytes` on shared memory; `lengths`: the outputs' planned byte lengths. The
   * outputs come back packed into `bytes` where they fit (worker-entry.ts posted).
   */
  | { kind: "format-slice"; job: FormatJob; rows: number; idx: number; n: number; blockRows: number; bytes: Uint8Array; lengths: readonly number[] };

/** A failed task, as a worker posts it: a KquantError field by field, any other error as its message and stack. */
export interface WorkerError {
  fields?: KquantErrorFields;
  message: string;
  stack?: string;
}

export type TaskResult =
  | { kind: "hash"; hex: string }
  | { kind: "quantize"; bad: number }
  | { kind: "amax"; amax: Float32Array; bad: number }
  | { kind: "verify-record"; findings: RecordFindings }
  | { kind: "stats"; stats: TensorStats }
  /** The block's outputs and where they go (format-slice.ts formatBlock), their buffers transferred; null: its values were refused. */
  | { kind: "format-slice"; parts: BlockPart[] | null }
  | { kind: "done" };

interface Pending {
  id: number;
  task: Task;
  resolve: (r: TaskResult) => void;
  reject: (e: unknown) => void;
}

/**
 * The CLI bundle's worker is a bundle of its own beside it (scripts/bundle.mjs names it here, an
 * esbuild define); in the library it is the compiled worker-entry.js beside this module.
 */
declare const KQUANT_WORKER_FILE: string | undefined;

/** The worker script threads start from when not told otherwise. */
export const DEFAULT_WORKER_URL = new URL(typeof KQUANT_WORKER_FILE === "string" ? KQUANT_WORKER_FILE : "./worker-entry.js", import.meta.url);

/**
 * The single-file executable has no worker file on disk: scripts/build-exe.mjs bundles the worker
 * into this string (an esbuild define), and the workers are started from it.
 */
declare const KQUANT_BUNDLED_WORKER: string | undefined;
const BUNDLED_WORKER: string | undefined = typeof KQUANT_BUNDLED_WORKER === "string" ? KQUANT_BUNDLED_WORKER : undefined;

/** Whether worker threads can start: a bundled worker, or a worker module that exists. */
export function workerAvailable(url: URL): boolean {
  return BUNDLED_WORKER !== undefined || url.protocol !== "file:" || existsSync(fileURLToPath(url));
}

/** Threads to use when not told: one per core, at most 4 (the work is memory-bound beyond that). */
export function defaultThreads(): number {
  const fromEnv = Number(process.env.KQUANT_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv >= 0) return fromEnv;
  return Math.min(4, availableParallelism());
}

/**
 * Tasks each worker may hold at once by default. More than one, so a worker goes straight on to
 * its next task instead of waiting for the main thread (busy with reads and writes) to hand it one.
 */
const DEPTH = 3;

/** How a WorkerPool hands out tasks. */
export interface PoolOptions {
  /**
   * Tasks a worker may hold at once (default 3, for quantize's many short slices). Read-back hands
   * out whole records, which are few and long: held back in the queue (depth 1), each goes to the
   * first worker that is free instead of waiting behind another on a busy one.
   */
  depth?: number;
}

export class WorkerPool {
  private readonly workers: Worker[] = [];
  /** Tasks sent to each worker and not yet answered, by task id. */
  private readonly sent = new Map<Worker, Map<number, Pending>>();
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private nextStream = 0;
  private failed: unknown = null;
  private readonly depth: number;

  constructor(size: number, url: URL = DEFAULT_WORKER_URL, options: PoolOptions = {}) {
    this.depth = options.depth ?? DEPTH;
    for (let i = 0; i < size; i++) {
      const w = BUNDLED_WORKER !== undefined ? new Worker(BUNDLED_WORKER, { eval: true }) : new Worker(url);
      const mine = new Map<number, Pending>();
      w.on("message", (msg: { id: number; ok: boolean; result?: TaskResult; error?: WorkerError }) => {
        const p = mine.get(msg.id)!;
        mine.delete(msg.id);
        if (msg.ok) p.resolve(msg.result!);
        else {
          const e = msg.error!;
          p.reject(e.fields ? new KquantError(e.fields) : Object.assign(new Error(e.message), { stack: e.stack }));
        }
        this.pump();
      });
      w.on("error", (err) => this.fail(err));
      this.workers.push(w);
      this.sent.set(w, mine);
    }
  }

  /** Worker threads in the pool. */
  get size(): number {
    return this.workers.length;
  }

  run(task: Task): Promise<TaskResult> {
    if (this.failed !== null) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, task, resolve, reject });
      this.pump();
    });
  }

  async hash(data: SharedRange): Promise<string> {
    return ((await this.run({ kind: "hash", data })) as { hex: string }).hex;
  }

  /**
   * A hash (hash.ts) of bytes that arrive part by part (a tensor being read): every part goes to the same
   * worker, whose message queue keeps them in order, while quantize tasks go to the others first.
   */
  hashStream(): { update(data: SharedRange): void; digest(data: SharedRange): Promise<string> } {
    const stream = this.nextStream++;
    const worker = this.workers[stream % this.workers.length]!;
    const post = (data: SharedRange, final: boolean): Promise<TaskResult> => {
      if (this.failed !== null) return Promise.reject(this.failed);
      return new Promise((resolve, reject) => {
        const p: Pending = { id: this.nextId++, task: { kind: "hash-part", stream, data, final }, resolve, reject };
        this.sent.get(worker)!.set(p.id, p);
        worker.postMessage({ id: p.id, task: p.task });
      });
    };
    const parts: Promise<TaskResult>[] = [];
    return {
      update: (data) => void parts.push(post(data, false)),
      digest: async (data) => {
        const last = post(data, true);
        await Promise.all(parts);
        return ((await last) as { hex: string }).hex;
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** Hands queued tasks, in order, to the least-loaded workers with room. */
  private pump(): void {
    while (this.queue.length > 0) {
      let best: Worker | null = null;
      for (const w of this.workers) {
        const load = this.sent.get(w)!.size;
        if (load < this.depth && (best === null || load < this.sent.get(best)!.size)) best = w;
      }
      if (best === null) return;
      const p = this.queue.shift()!;
      this.sent.get(best)!.set(p.id, p);
      best.postMessage({ id: p.id, task: cloneable(p.task) });
    }
  }

  private fail(err: unknown): void {
    this.failed = err;
    const pending = [...this.sent.values()].flatMap((m) => [...m.values()]);
    for (const p of [...pending, ...this.queue.splice(0)]) p.reject(err);
    for (const m of this.sent.values()) m.clear();
  }
}

/** A task as a worker gets it: kernels never see the layout, whose written tensors may carry encode functions (not cloneable). */
function cloneable(task: Task): Task {
  return "step" in task && task.step.kind === "quantize" ? { ...task, step: { ...task.step, written: [] } } : task;
}
