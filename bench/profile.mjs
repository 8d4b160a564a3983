#!/usr/bin/env node
/**
 * Where kquant's CPU time goes: `node bench/profile.mjs [--runs N] [--size 256M]` runs the CLI
 * under `node --cpu-prof` (every thread writes a profile) on the F32 set of bench/llama/compare.mjs
 * for `--int8` and `--int4 --block-size 32`, 2 threads, and sums each function's self time into
 * stages. A function is put in a stage by the source file that declares it (src/**), else by the
 * Node internal it is (module loader, crypto hash, fs, message ports). Prints, per case, the median
 * over the runs of each stage's milliseconds on the main thread and on the workers, and the
 * functions with the most self time.
 *
 * `node bench/profile.mjs --refs [--size 1] [--runs N] [--cases W4A16,...] [--only kquant|references]` does the same for the
 * cases of bench/refs.mjs (kquant --scheme / --mlx on its bf16 Llama folder), then profiles each
 * reference once (bench/refs.py profile: cProfile over every Python thread, self time by where it
 * lives: torch ops, safetensors read / write, mlx, Python).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { generate, here, kquant, median, option as optionIn, root, work } from "./common.mjs";
import { CASES as REF_CASES, commands, llamaFolder, PY_ENV, refEnv } from "./refs.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => optionIn(args, name, fallback);
const refs = args.includes("--refs");
const runs = Number(option("--runs", refs ? "1" : "3"));
const size = option("--size", refs ? "1" : "256M");
const COUNT = { "256M": 16, "2G": 128 }[size];
const only = option("--cases", undefined)?.split(",");
const CASES = refs
  ? REF_CASES.filter((c) => !only || only.includes(c.name)).map((c) => ({ name: `bf16 Llama ${c.kquant.join(" ")}`, flags: c.kquant, ref: c }))
  : [
      { name: "F32 --int8", flags: ["--int8"] },
      { name: "F32 --int4 --block-size 32", flags: ["--int4", "--block-size", "32"] },
    ];
const STAGES = ["start-up", "read", "hash", "kernel", "grouped scale/zero JS", "pipeline JS", "messages", "write", "GC", "other", "idle"];

/** Function name → stage, from the `function NAME` declarations under src/. */
function sourceStages() {
  const stages = new Map();
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith(".ts")) {
        const file = relative(join(root, "src"), p);
        for (const m of readFileSync(p, "utf8").matchAll(/function\s*\*?\s*(\w+)\s*[(<]/g)) stages.set(m[1], stageOfFile(file, m[1]));
      }
    }
  };
  walk(join(root, "src"));
  return stages;
}

function stageOfFile(file, name) {
  if (file === "quant/grouped.ts" && (name === "absMaxQuantizeGroupedWithZeroPoint" || name === "groupParameters")) return "grouped scale/zero JS";
  if (file === "quant/f32.ts" || file === "quant/round.ts") return "grouped scale/zero JS"; // its float32 helpers
  if (file.startsWith("quant/")) return "kernel";
  if (file === "pipeline/hash.ts") return "hash";
  if (/formats\/(safetensors-writer|atomic)|pipeline\/outputs|pipeline\/manifest/.test(file)) return "write";
  if (/formats\//.test(file)) return "read";
  if (file.startsWith("pipeline/")) return "pipeline JS";
  if (file.startsWith("layouts/")) return "write"; // what a folder's files hold (config, index, header order)
  return "start-up"; // cli, plan: argument parsing and planning
}

function stageOf(node, parents, fromSource) {
  const frame = node.callFrame;
  const { functionName: name, url } = frame;
  if (name === "(idle)") return "idle";
  if (name === "(garbage collector)") return "GC";
  if (url.startsWith("wasm://") || name.startsWith("wasm-function") || name === "GenericJSToWasmWrapper") return "kernel";
  // node:crypto (sha256, older manifests) or hash-wasm's XXH3 (bundled: its copy into the module's memory, update, digest)
  if (/crypto/.test(url) || /^(update|digest|updateUInt8Array|getDigestHex|writeMemory|encodeResult)$/.test(name)) return "hash";
  if (/modules|lexer|realm|bootstrap|pre_execution|process\/execution|^node:vm|^vm$|helpers/.test(url)) return "start-up";
  if (/^(compileFunction|compileForInternalLoader|internalBinding|evalScript|Module|startThread|E|makeNodeError\w*)$/.test(name)) return "start-up";
  if (/messageport|event_target|worker_threads|events/.test(url) || name === "postMessage") return "messages";
  if (/^(read|open|openFileHandle|stat|fstat|readFileSync|close)$/.test(name)) return "read";
  if (/^(writeBuffer|writeBuffers|write|writev|rename|fsync|ftruncate)$/.test(name)) return "write";
  if (url.startsWith("node:") && frame.lineNumber === 0) return "start-up"; // a built-in module's top level
  const ours = (u) => /kquant(-\w+)?\.cjs$/.test(u) || u === "[worker eval]"; // the CLI's split bundles
  if (ours(url)) {
    // An arrow function (a kernel's block visitor, a message handler) belongs to the stage of the
    // nearest named kquant function that called it.
    for (let n = node; n; n = parents.get(n.id)) {
      const cf = n.callFrame;
      if (ours(cf.url) && fromSource.has(cf.functionName)) return fromSource.get(cf.functionName);
    }
    return "pipeline JS";
  }
  return "other";
}

/** Self milliseconds by stage and by function for one .cpuprofile. */
function summarise(file, fromSource) {
  const p = JSON.parse(readFileSync(file, "utf8"));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parents = new Map();
  for (const n of p.nodes) for (const child of n.children ?? []) parents.set(child, n);
  const self = new Map();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000));
  const stages = Object.fromEntries(STAGES.map((s) => [s, 0]));
  const functions = new Map();
  for (const [id, ms] of self) {
    const node = byId.get(id);
    const frame = node.callFrame;
    const stage = stageOf(node, parents, fromSource);
    stages[stage] += ms;
    const key = `${frame.functionName || "(anonymous)"} [${stage}]`;
    functions.set(key, (functions.get(key) ?? 0) + ms);
  }
  return { stages, functions, wall: (p.endTime - p.startTime) / 1000 };
}

function main() {
  const fromSource = sourceStages();
  mkdirSync(work, { recursive: true });
  const input = refs ? llamaFolder(size) : join(work, `llama-${size}-f32.safetensors`);
  if (!refs) generate(input, "F32", COUNT, [4096, 1024]);
  const file = refs ? join(input, "model.safetensors") : input;
  execFileSync("cat", [file], { stdio: ["ignore", "ignore", "inherit"] });
  const part = option("--only", "both");
  for (const c of part === "references" ? [] : CASES) {
    const perRun = [];
    for (let run = 0; run < runs; run++) {
      const dir = join(work, "profile");
      rmSync(dir, { recursive: true, force: true });
      const out = join(work, refs ? "profile-out" : "out.safetensors");
      const argv = ["--cpu-prof", "--cpu-prof-dir", dir, kquant, "quantize", input, ...c.flags, ...(refs ? [] : ["--threads", "2"]), "-o", out, "--force", "--quiet"];
      const start = process.hrtime.bigint();
      const r = spawnSync(process.execPath, argv, { stdio: "inherit" });
      const wall = Number(process.hrtime.bigint() - start) / 1e6;
      if (r.status !== 0) throw new Error(`profiled run failed (${r.status})`);
      // Profiles are named CPU.<date>.<time>.<pid>.<thread>.<seq>; thread 0 is the main thread.
      const files = readdirSync(dir).sort();
      const threads = files.map((f) => ({ main: f.split(".")[4] === "0", ...summarise(join(dir, f), fromSource) }));
      perRun.push({ wall, threads });
      rmSync(out, { recursive: true, force: true });
      rmSync(`${out}.json`, { force: true });
    }
    report(c.name, perRun);
  }
  if (refs && part !== "kquant") profileReferences(input);
}

/** One cProfile'd run of each case's reference (bench/refs.py profile), its table printed. */
function profileReferences(input) {
  const env = refEnv();
  const out = join(work, "profile-ref-out");
  for (const c of CASES) {
    rmSync(out, { recursive: true, force: true });
    const [cmd, argv] = commands(c.ref, input, out, env).r;
    const python = c.ref.ref === "llmc" ? cmd : join(dirname(cmd), "python");
    const rest = c.ref.ref === "llmc" ? argv.slice(2) : argv;
    process.stdout.write(`\n### ${c.ref.ref === "llmc" ? "model_free_ptq" : "mlx_lm.convert"} ${c.ref.name}, size ${size}: one cProfile'd run\n\n`);
    const start = process.hrtime.bigint();
    const r = spawnSync(python, [join(here, "refs.py"), "profile", c.ref.ref, ...rest], { stdio: ["ignore", "inherit", "ignore"], env: PY_ENV });
    if (r.status !== 0) throw new Error(`profiled reference run failed (${r.status})`);
    process.stdout.write(`\nWall ${(Number(process.hrtime.bigint() - start) / 1e9).toFixed(1)} s with the profiler.\n`);
    rmSync(out, { recursive: true, force: true });
  }
}

function report(name, perRun) {
  const f = (x) => x.toFixed(0);
  const stageMs = (run, main) =>
    Object.fromEntries(STAGES.map((s) => [s, run.threads.filter((t) => t.main === main).reduce((a, t) => a + t.stages[s], 0)]));
  const mains = perRun.map((r) => stageMs(r, true));
  const workers = perRun.map((r) => stageMs(r, false));
  const lines = [
    `### ${name}, ${size}, ${refs ? "default" : "2"} threads: ${perRun.length} profiled run(s), wall ${f(median(perRun.map((r) => r.wall)))} ms (median, with the profiler)`,
    "",
    "| stage | main thread ms | workers ms (both) | CPU ms (main + workers) |",
    "|---|---:|---:|---:|",
  ];
  for (const s of STAGES) {
    const m = median(mains.map((x) => x[s]));
    const w = median(workers.map((x) => x[s]));
    lines.push(`| ${s} | ${f(m)} | ${f(w)} | ${s === "idle" ? "-" : f(m + w)} |`);
  }
  const all = new Map();
  for (const run of perRun) for (const t of run.threads) for (const [k, ms] of t.functions) all.set(k, (all.get(k) ?? 0) + ms / perRun.length);
  const top = [...all].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, 12);
  lines.push("", `Top self time (mean ms per run, all threads): ${top.map(([k, ms]) => `${k} ${f(ms)}`).join("; ")}.`, "");
  process.stdout.write(`${lines.join("\n")}\n`);
}

main();
