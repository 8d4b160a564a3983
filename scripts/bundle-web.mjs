#!/usr/bin/env node
/**
 * The page (web/) as static files in dist/web/: index.html, style.css, main.js (the page),
 * worker.js (the Web Worker that runs the pipeline) and pool-worker.js (the pool's workers:
 * src/pipeline/worker-entry.ts, the CLI's worker thread, through web/pool-worker.ts), built by esbuild from web/ and src/ — the
 * same source as the CLI, not a copy. src/ reaches Node's modules, which the browser has not; the
 * bundle maps them to web/shims/ and the page's file system (web/vfs.ts), so the readers,
 * planner, kernels and writers run unchanged. `npm run build` calls this after the CLI bundle.
 */
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { bundle, inlineVersion, wasmKernelsBase64 } from "./bundle.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const WEB = join(ROOT, "web");

/** Node module → its stand-in in the page. */
const SHIMS = {
  "node:fs/promises": "vfs.ts",
  "node:fs": "vfs.ts",
  "node:path": "shims/path.ts",
  "node:crypto": "shims/crypto.ts",
  "node:buffer": "shims/buffer.ts",
  "node:zlib": "shims/node-misc.ts",
  "node:stream": "shims/node-misc.ts",
  // The pool's seam: Node's Worker as a Web Worker (src/pipeline/workers.ts); a pool worker's own side is POOL_WORKER_SHIMS.
  "node:worker_threads": "shims/worker-threads.ts",
  "node:os": "shims/node-misc.ts",
  "node:url": "shims/node-misc.ts",
  "node:module": "shims/node-misc.ts",
  // npz.ts's zip reader: the same reading over the page's file system (File.slice).
  yauzl: "shims/yauzl.ts",
  // progress.ts loads cli-progress only for a terminal, which the page never has.
  "cli-progress": "shims/node-misc.ts",
  // npz.ts's zip writer: the page writes no .npz.
  yazl: "shims/yazl.ts",
};

/** In a pool worker (pool-worker.js: web/pool-worker.ts, src/pipeline/worker-entry.ts), parentPort is the worker's own scope. */
const POOL_WORKER_SHIMS = { ...SHIMS, "node:worker_threads": "shims/worker-port.ts" };

const browserShims = (shims) => ({
  name: "browser-shims",
  setup(b) {
    b.onResolve({ filter: /^(node:[a-z_/]+|yauzl|yazl|cli-progress)$/ }, (args) => {
      const file = shims[args.path];
      if (file === undefined) return { errors: [{ text: `${args.path} has no stand-in in the page (scripts/bundle-web.mjs SHIMS)` }] };
      return { path: join(WEB, file) };
    });
  },
});

/**
 * The CSP sources that let the verify report (src/report/html.ts, shown in the page in an iframe,
 * which inherits the page's policy) run its one <style> and one <script>, and nothing else inline.
 */
async function reportHashes() {
  const gen = await bundle({
    stdin: { contents: 'export { REPORT_STYLE, REPORT_SCRIPT } from "./html.ts";', resolveDir: join(ROOT, "src", "report"), loader: "ts" },
    bundle: true,
    platform: "node",
    format: "esm",
    write: false,
    logLevel: "silent",
  });
  const { REPORT_STYLE, REPORT_SCRIPT } = await import(`data:text/javascript;base64,${Buffer.from(gen.outputFiles[0].text).toString("base64")}`);
  const hash = (text) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
  return { style: hash(REPORT_STYLE), script: hash(REPORT_SCRIPT) };
}

/** Builds dist/web (or `outdir`). */
export async function bundleWeb(outdir = join(ROOT, "dist", "web")) {
  const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  mkdirSync(outdir, { recursive: true });
  const common = {
    outdir,
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "chrome110",
    mainFields: ["module", "browser", "main"],
    // Minified: the page is downloaded (and it rides in the npm package), never read there.
    minify: true,
    legalComments: "inline",
    inject: [join(WEB, "shims", "globals.ts")],
    // The pool's workers (workers.ts DEFAULT_WORKER_URL) start from pool-worker.js beside worker.js.
    define: { KQUANT_WASM_KERNELS: JSON.stringify(await wasmKernelsBase64()), KQUANT_WORKER_FILE: JSON.stringify("./pool-worker.js") },
    logLevel: "silent",
  };
  await bundle({ ...common, entryPoints: { main: join(WEB, "main.ts"), worker: join(WEB, "worker.ts") }, plugins: [inlineVersion(version), browserShims(SHIMS)] });
  await bundle({ ...common, entryPoints: { "pool-worker": join(WEB, "pool-worker.ts") }, plugins: [inlineVersion(version), browserShims(POOL_WORKER_SHIMS)] });
  const hashes = await reportHashes();
  const html = readFileSync(join(WEB, "index.html"), "utf8").replace("%REPORT_SCRIPT_HASH%", hashes.script).replace("%REPORT_STYLE_HASH%", hashes.style);
  writeFileSync(join(outdir, "index.html"), html);
  copyFileSync(join(WEB, "style.css"), join(outdir, "style.css"));
  return outdir;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await bundleWeb(process.argv[2] ? resolve(process.argv[2]) : undefined);
}
