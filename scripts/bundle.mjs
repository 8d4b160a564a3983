#!/usr/bin/env node
/**
 * The CLI as one CommonJS file. `npm run build` writes dist/kquant.cjs (what bin/kquant.js runs)
 * and the worker threads' bundle beside it, dist/kquant-worker.cjs; scripts/build-exe.mjs makes a
 * `standalone` bundle, with the worker inside it as a string, and turns that into the single-file
 * executable.
 *
 * Why a bundle: Node 20 resolves and compiles ~60 separate ES modules in ~150 ms before kquant
 * does any work; one file loads in ~35 ms (bench/results.md). Worker threads start from one file
 * too, so they skip the module graph as well: its own (KQUANT_WORKER_FILE in
 * src/pipeline/workers.ts), kept out of the CLI bundle, which every start compiles, or in the
 * executable, which has no files beside it, the string KQUANT_BUNDLED_WORKER.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build, formatMessages } from "esbuild";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * src/version.ts reads ../package.json at run time, which the executable does not carry, so the
 * bundle gets a module holding the version as a literal instead.
 */
export function inlineVersion(version) {
  return {
    name: "inline-version",
    setup(b) {
      b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, (args) => {
        // Its other constants (KERAS_VERSION) are literals already: keep them.
        const rest = readFileSync(args.path, "utf8").match(/^export const KERAS_VERSION[^\n]*$/m)?.[0] ?? "";
        return { contents: `export const VERSION: string = ${JSON.stringify(version)};\n${rest}\n`, loader: "ts" };
      });
    },
  };
}

/**
 * commander requires node:child_process as it loads, for subcommands that are executables of
 * their own, which kquant has none of; loading it costs every start ~7 ms, so commander gets it
 * on first use instead.
 */
const lazyChildProcess = {
  name: "lazy-child-process",
  setup(b) {
    b.onResolve({ filter: /^node:child_process$/ }, (args) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: "child_process", namespace: "lazy" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "lazy" }, () => ({
      contents: 'let m; module.exports = new Proxy({}, { get: (_, key) => (m ??= require("node:child_process"))[key] });',
      loader: "js",
    }));
  },
};

/** A warning here means a bundle that misbehaves at run time (e.g. an import.meta it cannot see). */
export async function bundle(options) {
  const result = await build(options);
  if (result.warnings.length > 0) {
    const text = await formatMessages(result.warnings, { kind: "warning" });
    throw new Error(`esbuild warnings:\n${text.join("")}`);
  }
  return result;
}

/**
 * The SIMD kernels' WebAssembly module (src/quant/wasm), assembled once here so that no thread
 * of the CLI spends its first tens of milliseconds assembling it; base64 for an esbuild define.
 */
export async function wasmKernelsBase64() {
  const wasmDir = join(ROOT, "src", "quant", "wasm");
  const gen = await bundle({
    stdin: { contents: 'export { kernelModuleBytes } from "./module.ts"; export { PAGES } from "./kernels.ts";', resolveDir: wasmDir, loader: "ts" },
    bundle: true,
    platform: "node",
    format: "esm",
    write: false,
    logLevel: "silent",
  });
  const { kernelModuleBytes, PAGES } = await import(`data:text/javascript;base64,${Buffer.from(gen.outputFiles[0].text).toString("base64")}`);
  return Buffer.from(kernelModuleBytes(PAGES)).toString("base64");
}

/**
 * Writes the CLI bundle to `outfile` and returns the version it carries. The npm package's bundle
 * leaves most runtime dependencies to node_modules, where npm installs them anyway; a `standalone`
 * bundle (the executable's) carries them all.
 */
export async function bundleCli(outfile, { standalone = false } = {}) {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const { version } = pkg;
  /**
   * `import.meta.url` does not exist in CommonJS (esbuild would leave it undefined, and
   * `new URL(x, undefined)` throws as the module loads), so it becomes the bundle's own URL.
   */
  const common = {
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    // hash-wasm's ES build, whose unused algorithms esbuild leaves out (its CommonJS "main" holds them all).
    mainFields: ["module", "main"],
    minifySyntax: true,
    legalComments: "inline",
    plugins: [inlineVersion(version), lazyChildProcess],
    banner: { js: 'var __kquant_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
    define: { "import.meta.url": "__kquant_import_meta_url", KQUANT_WASM_KERNELS: JSON.stringify(await wasmKernelsBase64()) },
    logLevel: "silent",
  };
  const workerFile = "kquant-worker.cjs";
  const worker = await bundle({
    ...common,
    entryPoints: [join(ROOT, "src", "pipeline", "worker-entry.ts")],
    write: !standalone,
    outfile: join(dirname(outfile), standalone ? "worker.cjs" : workerFile),
  });
  // commander is inside even so: loading it from node_modules cost every start ~18 ms (resolving
  // and compiling its files), and hash-wasm (every run hashes); the others load only when a run
  // needs them (a terminal, an .npz).
  const external = standalone ? [] : Object.keys(pkg.dependencies ?? {}).filter((d) => d !== "commander" && d !== "hash-wasm");
  const define = { ...common.define, ...(standalone ? { KQUANT_BUNDLED_WORKER: JSON.stringify(worker.outputFiles[0].text) } : { KQUANT_WORKER_FILE: JSON.stringify(`./${workerFile}`) }) };
  if (standalone) {
    // One file: what the commands import lazily is inside it, initialised when first imported.
    await bundle({ ...common, entryPoints: [join(ROOT, "scripts", "cli-entry.ts")], outfile, external, define });
    return version;
  }
  /*
   * The npm build splits the CLI so that a start compiles only what its command needs: the shell
   * (commander and the commands' options, all that `--version` and `--help` run) and, loaded by
   * a command when it runs, the pipeline (what src/cli/*.ts import with `await import(...)`).
   * errors.ts is a file of its own that both require, so KquantError is one class for both.
   */
  const dir = dirname(outfile);
  const files = { pipeline: "./kquant-pipeline.cjs" };
  /*
   * Modules that hold the process's state (the error class, the files being written, the terminal's
   * progress bar) are files of their own that both bundles require, so that each exists once: a copy
   * in each bundle would let the shell's signal handler see an empty registry of live files.
   */
  const shared = new Map(SHARED_MODULES.map((m) => [join(ROOT, "src", m), `./kquant-${m.replace(/^.*\//, "").replace(/\.ts$/, "")}.cjs`]));
  const sharedModules = (own) => ({
    name: "shared-modules",
    setup(b) {
      b.onResolve({ filter: /\.js$/ }, (args) => {
        const path = resolve(args.resolveDir, args.path.replace(/\.js$/, ".ts"));
        return shared.has(path) && path !== own ? { path: shared.get(path), external: true } : undefined;
      });
    },
  });
  const lazy = new Set();
  const lazyPipeline = {
    name: "lazy-pipeline",
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind !== "dynamic-import" || !args.importer.startsWith(join(ROOT, "src", "cli"))) return undefined;
        lazy.add(resolve(args.resolveDir, args.path.replace(/\.js$/, ".ts")));
        return { path: files.pipeline, external: true };
      });
    },
  };
  // `import()` of a file beside it becomes require(): through Node's ES module loader a CommonJS
  // file is lexed for its exports before it is compiled.
  const split = { ...common, external, define, supported: { "dynamic-import": false }, metafile: true };
  for (const [path, file] of shared) await bundle({ ...split, entryPoints: [path], outfile: join(dir, file), plugins: [...common.plugins, sharedModules(path)] });
  // Every start compiles the shell, so it is kept small (no whitespace: ~40 % of commander's bytes).
  const shell = await bundle({ ...split, entryPoints: [join(ROOT, "scripts", "cli-entry.ts")], outfile, minifyWhitespace: true, plugins: [...common.plugins, sharedModules(null), lazyPipeline] });
  const pipeline = await bundle({
    ...split,
    stdin: { contents: [...lazy].map((p) => `export * from ${JSON.stringify(p)};`).join("\n"), resolveDir: ROOT, loader: "ts" },
    outfile: join(dir, files.pipeline),
    plugins: [...common.plugins, sharedModules(null)],
  });
  checkNoStateTwice(shell.metafile, pipeline.metafile);
  return version;
}

/** The modules the shell and the pipeline bundle share as files of their own (paths under src/). */
const SHARED_MODULES = ["errors.ts", "formats/live-files.ts", "pipeline/progress.ts"];

/** Modules in both bundles whose top-level state a second copy only recomputes, and why. */
const PER_BUNDLE_COPY_IS_HARMLESS = {
  "src/quant/float8.ts": "decoding tables built on first use",
  "src/quant/convert.ts": "a float16 lookup table built on first use",
  "src/quant/wasm/kernels.ts": "the kernels' instance, made on first use (useSimd is for tests and benchmarks)",
  "src/modes/registry.ts": "a fixed table of the mode descriptors",
  "src/quant/mlx/fp.ts": "MLX's code tables, built on first use per dtype",
};

/**
 * Fails the build when a module inside both bundles keeps state at its top level (a `let`, or a
 * `new Map` / `new Set`) and is neither one of SHARED_MODULES nor in PER_BUNDLE_COPY_IS_HARMLESS:
 * each bundle would have its own copy.
 */
function checkNoStateTwice(shellMeta, pipelineMeta) {
  const inShell = new Set(Object.keys(shellMeta.inputs).filter((k) => k.startsWith("src/")));
  const twice = Object.keys(pipelineMeta.inputs).filter((k) => inShell.has(k));
  const stateful = twice.filter((k) =>
    readFileSync(join(ROOT, k), "utf8")
      .split("\n")
      .some((line) => /^(let |const \w+ = new (Map|Set|WeakMap)\b)/.test(line)) && !(k in PER_BUNDLE_COPY_IS_HARMLESS),
  );
  if (stateful.length > 0) throw new Error(`modules with state in both the shell and the pipeline bundle (add them to SHARED_MODULES): ${stateful.join(", ")}`);
}

// `node scripts/bundle.mjs [outfile]`: the npm build's step (default dist/kquant.cjs).
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await bundleCli(resolve(process.argv[2] ?? join(ROOT, "dist", "kquant.cjs")));
}
