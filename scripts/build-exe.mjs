#!/usr/bin/env node
/**
 * `npm run build:exe` → dist-exe/kquant: one Linux x64 file that runs without a Node install.
 * `node scripts/build-exe.mjs <dir>` builds into <dir> instead (the slow test uses a temp dir).
 *
 * Node 20's single-executable support runs one CommonJS script that can only require built-in
 * modules, so the CLI and its four dependencies are bundled into one CJS file first; the bundle
 * becomes a SEA blob that postject writes into a copy of this node binary.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build, formatMessages } from "esbuild";
import postject from "postject";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const OUT_DIR = resolve(process.argv[2] ?? join(ROOT, "dist-exe"));
const BUNDLE = join(OUT_DIR, "kquant.cjs");
const BLOB = join(OUT_DIR, "kquant.blob");
const SEA_CONFIG = join(OUT_DIR, "sea-config.json");
const EXE = join(OUT_DIR, "kquant");
// The fuse Node's SEA loader checks; postject flips it so the binary looks for its blob.
const SENTINEL_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

function fail(message) {
  process.stderr.write(`build-exe: ${message}\n`);
  process.exit(1);
}

// Mach-O needs codesign and PE a different resource layout: only the ELF path is built and tested.
if (process.platform !== "linux" || process.arch !== "x64") {
  fail(`builds for linux x64 only (this is ${process.platform} ${process.arch})`);
}
const nodeBinary = process.execPath;
if (!readFileSync(nodeBinary).includes(`${SENTINEL_FUSE}:0`)) {
  fail(`${nodeBinary} has no unflipped SEA fuse; use an official Node >= 20 build`);
}

const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

mkdirSync(OUT_DIR, { recursive: true });
// Only our own files: the output folder may be one the caller also uses for other things.
for (const file of [BUNDLE, BLOB, SEA_CONFIG, EXE]) rmSync(file, { force: true });

/**
 * src/version.ts reads ../package.json at run time, which the executable does not carry, so the
 * bundle gets a module holding the version as a literal instead.
 */
const inlineVersion = {
  name: "inline-version",
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({
      contents: `export const VERSION: string = ${JSON.stringify(version)};\n`,
      loader: "ts",
    }));
  },
};

/**
 * What both bundles share. `import.meta.url` does not exist in CommonJS (esbuild would leave it
 * undefined, and `new URL(x, undefined)` throws as the module loads), so it becomes this file's
 * own URL: module-relative URLs are still valid, though nothing sits beside the executable.
 */
const common = {
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  minifySyntax: true,
  legalComments: "inline",
  plugins: [inlineVersion],
  banner: { js: 'var __kquant_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
  define: { "import.meta.url": "__kquant_import_meta_url" },
  logLevel: "silent",
};

/** A warning here means a bundle that misbehaves at run time (e.g. an import.meta it cannot see). */
async function bundle(options) {
  const result = await build({ ...common, ...options });
  if (result.warnings.length > 0) {
    const text = await formatMessages(result.warnings, { kind: "warning" });
    fail(`esbuild warnings:\n${text.join("")}`);
  }
  return result;
}

/**
 * Worker threads cannot load a file that is not on disk, so the quantize worker travels as a
 * string, for src/pipeline/workers.ts to start with `new Worker(KQUANT_BUNDLED_WORKER, { eval: true })`
 * when the constant is defined (`typeof` of an undeclared global is "undefined" in the npm build).
 * Without that, run-quantize finds no worker file beside the executable and stays on one thread.
 */
const WORKER_ENTRY = join(ROOT, "src", "pipeline", "worker-entry.ts");
const workerDefine = {};
if (existsSync(WORKER_ENTRY)) {
  const worker = await bundle({ entryPoints: [WORKER_ENTRY], write: false, outfile: join(OUT_DIR, "worker.cjs") });
  workerDefine.KQUANT_BUNDLED_WORKER = JSON.stringify(worker.outputFiles[0].text);
}

await bundle({
  entryPoints: [join(ROOT, "scripts", "exe-entry.ts")],
  outfile: BUNDLE,
  define: { ...common.define, ...workerDefine },
});

writeFileSync(
  SEA_CONFIG,
  JSON.stringify(
    {
      main: BUNDLE,
      output: BLOB,
      // stderr stays for kquant's own messages; scripts parse it.
      disableExperimentalSEAWarning: true,
      // V8's compiled code in the blob: the bundle is not re-parsed on every start.
      useCodeCache: true,
    },
    null,
    2,
  ) + "\n",
);
execFileSync(nodeBinary, ["--experimental-sea-config", SEA_CONFIG], { stdio: ["ignore", "ignore", "inherit"] });

copyFileSync(nodeBinary, EXE);
chmodSync(EXE, 0o755);
await postject.inject(EXE, "NODE_SEA_BLOB", readFileSync(BLOB), { sentinelFuse: SENTINEL_FUSE });

const reported = execFileSync(EXE, ["--version"], { encoding: "utf8", env: { PATH: "" } }).trim();
if (reported !== version) fail(`${EXE} --version printed "${reported}", expected "${version}"`);

const mb = (statSync(EXE).size / 1e6).toFixed(1);
process.stdout.write(`${EXE}: kquant ${version} (${mb} MB, Node ${process.versions.node}, linux-x64)\n`);
