/// <reference lib="dom" />
/**
 * node:worker_threads for the page: the seam that lets src/pipeline/workers.ts's WorkerPool (the
 * CLI's pool, its queue and its ordering) start Web Workers instead of Node's threads. A Worker
 * here is a module Web Worker (the pool's script, pool-worker.js, built from
 * src/pipeline/worker-entry.ts) behind Node's `on("message" | "error")` / `postMessage` /
 * `terminate`; `parentPort` is null, as on Node's main thread (worker-port.ts is the pool
 * worker's side). Tasks name ranges of SharedArrayBuffers, which only a cross-origin isolated
 * page has: the page's worker starts a pool only then (web/pool.ts).
 */
type Listener = (value: unknown) => void;

export class Worker {
  private readonly web: globalThis.Worker;

  constructor(url: URL | string) {
    this.web = new globalThis.Worker(url, { type: "module" });
  }

  on(event: "message" | "error", listener: Listener): this {
    if (event === "message") this.web.addEventListener("message", (e) => listener(e.data));
    else {
      // A script that fails to load or throws outside a task: Node's "error" with an Error.
      this.web.addEventListener("error", (e) => listener(new Error(e.message || "a pool worker failed to start")));
      this.web.addEventListener("messageerror", () => listener(new Error("a pool worker's message could not be read")));
    }
    return this;
  }

  postMessage(message: unknown): void {
    this.web.postMessage(message);
  }

  async terminate(): Promise<number> {
    this.web.terminate();
    return 0;
  }
}

export const parentPort = null;
export const isMainThread = true;
export default { Worker, parentPort, isMainThread };
