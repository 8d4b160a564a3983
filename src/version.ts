import { createRequire } from "node:module";

/** kquant's version, from package.json (one source of truth). */
export const VERSION: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version;

/** The Keras release whose arithmetic kquant reproduces bit for bit (golden vectors: fixtures/keras). */
export const KERAS_VERSION = "3.15.1";
