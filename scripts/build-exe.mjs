#!/usr/bin/env node
/**
 * `npm run build:exe` → dist-exe/kquant: one Linux x64 file that runs without a Node install.
 * `node scripts/build-exe.mjs <dir>` builds into <dir> instead (the slow test uses a temp dir).
 *
 * Node 20's single-executable support runs one CommonJS script that can only require built-in
 * modules: the npm build's bundle (scripts/bundle.mjs: the CLI, its four dependencies and the
 * worker in one CJS file) becomes a SEA blob that postject writes into a copy of this node binary.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import postject from "postject";
import { bundleCli } from "./bundle.mjs";

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

mkdirSync(OUT_DIR, { recursive: true });
// Only our own files: the output folder may be one the caller also uses for other things.
for (const file of [BUNDLE, BLOB, SEA_CONFIG, EXE]) rmSync(file, { force: true });

// The npm build's bundle (scripts/bundle.mjs): the CLI with its worker inside, nothing to find on disk.
let version;
try {
  version = await bundleCli(BUNDLE, { standalone: true });
} catch (err) {
  fail(err.message);
}

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
// `kquant --version` names the Keras release too: "kquant 0.1.0 (Keras 3.15.1)".
if (!reported.startsWith(`kquant ${version} `)) fail(`${EXE} --version printed "${reported}", expected "kquant ${version} (Keras …)"`);

const mb = (statSync(EXE).size / 1e6).toFixed(1);
process.stdout.write(`${EXE}: kquant ${version} (${mb} MB, Node ${process.versions.node}, linux-x64)\n`);
