/**
 * node:worker_threads inside a pool worker of the page (pool-worker.js, built from
 * src/pipeline/worker-entry.ts): `parentPort` is the Web Worker's own scope, so the CLI's worker
 * entry answers the pool (web/shims/worker-threads.ts) as it answers Node's.
 */
type Listener = (value: unknown) => void;

/** The dedicated worker's scope (the web tsconfig types `self` as a window). */
const scope = self as unknown as { addEventListener(type: "message", l: (e: MessageEvent) => void): void; postMessage(message: unknown, transfer: Transferable[]): void };

export const parentPort = {
  on(event: "message", listener: Listener): void {
    if (event === "message") scope.addEventListener("message", (e) => listener(e.data));
  },
  /** `transfer`: buffers handed over, not copied (a block's packed outputs, worker-entry.ts). */
  postMessage(message: unknown, transfer: Transferable[] = []): void {
    scope.postMessage(message, transfer);
  },
};
export const isMainThread = false;
export class Worker {
  constructor() {
    throw new Error("a pool worker starts no workers");
  }
}
export default { Worker, parentPort, isMainThread };
