/**
 * A fixed pool of worker threads (worker-entry.ts) fed from one FIFO queue. Tasks only name byte
 * ranges of SharedArrayBuffers, so posting one costs nothing however large the tensor.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { KquantError } from "../errors.js";
import type { QuantizeStep } from "../plan/plan.js";

export interface SharedRange {
  buf: SharedArrayBuffer;
  offset: number;
  length: number;
}

export type Task =
  | { kind: "hash"; data: SharedRange }
  | { kind: "quantize"; step: QuantizeStep; source: SharedRange; outputs: SharedRange[]; allowNonFinite: boolean };

export type TaskResult = { kind: "hash"; hex: string } | { kind: "quantize"; bad: number };

interface Pending {
  id: number;
  task: Task;
  resolve: (r: TaskResult) => void;
  reject: (e: unknown) => void;
}

/** The compiled worker beside this module (dist/pipeline/worker-entry.js). */
export const DEFAULT_WORKER_URL = new URL("./worker-entry.js", import.meta.url);

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

export class WorkerPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private failed: unknown = null;

  constructor(size: number, url: URL = DEFAULT_WORKER_URL) {
    for (let i = 0; i < size; i++) {
      const w = BUNDLED_WORKER !== undefined ? new Worker(BUNDLED_WORKER, { eval: true }) : new Worker(url);
      w.on("message", (msg: { id: number; ok: boolean; result?: TaskResult; error?: { name: string; message: string; stack?: string; exitCode?: number } }) => {
        const p = this.busy.get(w)!;
        this.busy.delete(w);
        if (msg.ok) p.resolve(msg.result!);
        else {
          const e = msg.error!;
          const err = e.name === "KquantError" ? new KquantError(e.message, e.exitCode) : Object.assign(new Error(e.message), { stack: e.stack });
          p.reject(err);
        }
        this.idle.push(w);
        this.pump();
      });
      w.on("error", (err) => this.fail(err));
      this.idle.push(w);
    }
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

  async close(): Promise<void> {
    await Promise.all([...this.idle, ...this.busy.keys()].map((w) => w.terminate()));
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const p = this.queue.shift()!;
      this.busy.set(w, p);
      w.postMessage({ id: p.id, task: p.task });
    }
  }

  private fail(err: unknown): void {
    this.failed = err;
    for (const p of [...this.busy.values(), ...this.queue.splice(0)]) p.reject(err);
    this.busy.clear();
  }
}
