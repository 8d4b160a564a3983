/**
 * The Node modules src/ imports that the page never uses (zlib: crc32.ts falls back to its table;
 * url, module, stream, events), and node:os's core count: stand-ins so the bundle links. (Worker
 * threads are worker-threads.ts and worker-port.ts.)
 */
/** The browser's logical processors: workers.ts's defaultThreads caps the pool at 4 of them, as on the CLI. */
export const availableParallelism = (): number => globalThis.navigator?.hardwareConcurrency || 1;
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
