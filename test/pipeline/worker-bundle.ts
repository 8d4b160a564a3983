/**
 * The worker thread runs compiled JavaScript; from the TypeScript sources the tests bundle
 * worker-entry.ts with esbuild (a dev dependency) into a temporary .mjs, once per test file.
 */
import { build } from "esbuild";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

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
  });
  return pathToFileURL(outfile);
}
