/**
 * The worker thread runs compiled JavaScript; from the TypeScript sources the tests bundle
 * worker-entry.ts with esbuild (a dev dependency) into a temporary .mjs, once per test file.
 */
import { build } from "esbuild";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { VERSION } from "../../src/version.js";
// @ts-expect-error: a plain ES module of the build, without type declarations
import { inlineVersion } from "../../scripts/bundle.mjs";

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
    // not got (read-back checks in the worker reach it through the manifest module): the npm
    // build's plugin inlines it.
    plugins: [inlineVersion(VERSION)],
  });
  return pathToFileURL(outfile);
}
