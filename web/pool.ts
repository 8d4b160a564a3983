/**
 * How many pool workers a run in the page starts: the CLI's WorkerPool (src/pipeline/workers.ts,
 * its queue, ordering and memory bound as they are) with Web Workers behind node:worker_threads
 * (shims/worker-threads.ts). Its tasks name ranges of SharedArrayBuffers, which a page has only
 * when cross-origin isolated (served with Cross-Origin-Opener-Policy: same-origin and
 * Cross-Origin-Embedder-Policy: require-corp, as `kquant web` serves it); elsewhere the run stays
 * on the page's one worker, as `--threads 0`. The bytes are the same either way.
 */

/** Whether this page (or its worker) can start a pool: it is cross-origin isolated. */
export function poolAvailable(): boolean {
  return (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
}

/**
 * The `threads` a run passes to runQuantize: `asked` (the Workers control; 0 for none), or
 * undefined for the CLI's default (small inputs in-process, else one per core up to 4:
 * navigator.hardwareConcurrency stands for the core count); always 0 without a pool.
 */
export function runThreads(asked: number | null): number | undefined {
  if (!poolAvailable()) return 0;
  return asked ?? undefined;
}
