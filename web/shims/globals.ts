/** The globals src/ uses without importing them (`process`, `Buffer`), injected into the page's bundles by esbuild. */
export { processShim as process } from "./process.js";
export { Buffer } from "./buffer.js";

/**
 * A page that is not cross-origin isolated has no SharedArrayBuffer. src/ makes some (read-back
 * buffers, used on this one thread) and asks whether a buffer is one; a plain ArrayBuffer
 * subclass answers both the same way, unshared.
 */
class UnsharedArrayBuffer extends ArrayBuffer {}
const SharedArrayBufferOrStandIn: typeof globalThis.SharedArrayBuffer =
  (globalThis as { SharedArrayBuffer?: typeof globalThis.SharedArrayBuffer }).SharedArrayBuffer ?? (UnsharedArrayBuffer as unknown as typeof globalThis.SharedArrayBuffer);
export { SharedArrayBufferOrStandIn as SharedArrayBuffer };
