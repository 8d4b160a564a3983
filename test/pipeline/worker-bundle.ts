/**
 * The worker thread runs compiled JavaScript; from the TypeScript sources the tests bundle
 * worker-entry.ts with esbuild (a dev dependency) into a temporary .mjs, once per test file.
 */
import { build } from "esbuild";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { VERSION } from "../../src/version.js";

export async function bundleWorker(dir: string): Promise<URL> {
  const outfile = join(dir, "worker-entry.mjs");
  await build({
    entryPoints: [fileURLToPath(new URL("../../src/pipeline/worker-entry.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "silent",
    // src/version.ts reads ../package.json beside itself, which a bundle in a temporary folder has
    // not got (read-back checks in the worker reach it through the manifest module).
    plugins: [
      {
        name: "inline-version",
        setup(b) {
          b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({ contents: `export const VERSION = ${JSON.stringify(VERSION)};`, loader: "ts" }));
        },
      },
    ],
  });
  return pathToFileURL(outfile);
}
