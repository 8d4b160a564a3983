/**
 * A worker of the page's pool (pool-worker.js): the CLI's worker thread, src/pipeline/worker-entry.ts,
 * as it is; node:worker_threads's parentPort is this Web Worker's scope here (shims/worker-port.ts).
 * The page's worker starts these through the CLI's WorkerPool (pool.ts, shims/worker-threads.ts).
 */
import "../src/pipeline/worker-entry.js";
