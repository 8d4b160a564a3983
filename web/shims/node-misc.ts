/**
 * The Node modules src/ imports that the page never uses (worker threads: the page runs the
 * pipeline in-process in a Web Worker of its own; zlib: crc32.ts falls back to its table; url,
 * os, module, stream, events): empty stand-ins so the bundle links.
 */
export const parentPort = null;
export const isMainThread = true;
export class Worker {
  constructor() {
    throw new Error("worker_threads in the page");
  }
}
export const availableParallelism = (): number => 1;
export const cpus = (): unknown[] => [{}];
export const fileURLToPath = (url: string | URL): string => new URL(url).pathname;
export const pathToFileURL = (path: string): URL => new URL(`file://${path}`);
export const createRequire = (): never => {
  throw new Error("require in the page");
};
export class Readable {
  static from(): never {
    throw new Error("node:stream in the page");
  }
}
export default {};
/** zlib.crc32 is absent here, so crc32.ts uses its table version. */
export const crc32 = undefined;
