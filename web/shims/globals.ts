/** The globals src/ uses without importing them (`process`, `Buffer`), injected into the page's bundles by esbuild. */
export { processShim as process } from "./process.js";
export { Buffer } from "./buffer.js";
