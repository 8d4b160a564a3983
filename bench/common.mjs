/**
 * What the bench's comparisons share: the generated safetensors inputs and pseudo-normal weights,
 * timing one command with its peak RSS, timing a function in-process, medians, src/ bundled on the
 * fly, and the machine's description.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, "..");
export const work = join(here, "work");
export const kquant = join(root, "bin", "kquant.js");
export const MiB = 1024 * 1024;

/**
 * A safetensors file of `count` tensors of `shape` (2-D), named layers.NNN.weight, deterministic
 * pseudo-normal values (writeTensors). Written once.
 */
export function generate(path, dtype, count, shape) {
  const tensors = Array.from({ length: count }, (_, i) => ({ name: `layers.${String(i).padStart(3, "0")}.weight`, shape }));
  writeTensors(path, dtype, tensors);
}

/**
 * A safetensors file of `tensors` ({name, shape}, 1-D or 2-D, in file order), deterministic
 * pseudo-normal values from one xorshift32 stream; BF16 holds the same stream as F32, rounded to
 * nearest even. Written once (an existing file is kept), through a .tmp renamed at the end.
 */
export function writeTensors(path, dtype, tensors) {
  if (existsSync(path)) return;
  const width = dtype === "F32" ? 4 : 2;
  const header = {};
  let offset = 0;
  for (const { name, shape } of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * width;
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(`${path}.tmp`, "w");
  writeSync(fd, prefix);
  writeSync(fd, json);
  let s = PSEUDO_NORMAL_SEED;
  for (const { shape } of tensors) {
    const elements = shape.reduce((a, b) => a * b, 1);
    const f32 = new Float32Array(elements);
    const u32 = new Uint32Array(f32.buffer);
    s = fillPseudoNormal(f32, shape[shape.length - 1], s);
    if (dtype === "F32") writeSync(fd, f32);
    else {
      const bf16 = new Uint16Array(elements);
      for (let i = 0; i < elements; i++) bf16[i] = (u32[i] + 0x7fff + ((u32[i] >>> 16) & 1)) >>> 16;
      writeSync(fd, bf16);
    }
  }
  closeSync(fd);
  renameSync(`${path}.tmp`, path);
}

/** Where every pseudo-normal stream of the bench starts (writeTensors, kernels.mjs, formats.mjs). */
export const PSEUDO_NORMAL_SEED = 0x9e3779b9;

/**
 * Fills `f32` (a row-major matrix of `cols` columns) with pseudo-normal weights from the xorshift32
 * state `s` and returns the state after them, so a stream can go on into the next tensor. The sum
 * of four uniforms is close enough to a normal for weights; row scales vary (row % 7) so
 * per-channel scales differ, as a real layer's.
 */
export function fillPseudoNormal(f32, cols, s) {
  for (let i = 0; i < f32.length; i++) {
    let acc = 0;
    for (let k = 0; k < 4; k++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      acc += (s >>> 0) / 4294967296;
    }
    f32[i] = (acc - 2) * (0.01 + (((i / cols) | 0) % 7) * 0.003);
  }
  return s;
}

/**
 * The module `entry` (TypeScript source exporting from ./src/..., resolved from the repository
 * root) bundled by esbuild on the fly and imported, so a bench measures the working tree, not a
 * stale dist/. `name` names the temporary folder (removed once imported).
 */
export async function bundleSrc(entry, name) {
  const { build } = await import("esbuild"); // a dev dependency: loaded only by the benches that bundle
  const dir = mkdtempSync(join(tmpdir(), `kquant-${name}-`));
  const out = join(dir, `${name}.mjs`);
  const result = await build({ stdin: { contents: entry, resolveDir: root, loader: "ts" }, bundle: true, format: "esm", platform: "node", write: false, logLevel: "error" });
  writeFileSync(out, result.outputFiles[0].text);
  try {
    return await import(pathToFileURL(out).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Milliseconds `fn()` takes: one warm-up call, then the median of `reps` timed calls. */
export function timeMs(fn, reps) {
  fn();
  const times = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(times);
}

/** The value after `name` in `args`, or `fallback`. */
export function option(args, name, fallback) {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
}

/**
 * Wall seconds, peak RSS (MiB, /usr/bin/time's %M) and CPU seconds (user + system, every thread) of one command; `stderr` is its standard
 * error (llama-quantize logs there). Throws when the command fails.
 */
export function measure(cmd, argv, env = process.env) {
  const timeFile = join(work, `time-${process.pid}.txt`); // benches may run side by side
  const start = process.hrtime.bigint();
  const r = spawnSync("/usr/bin/time", ["-o", timeFile, "-f", "%M %U %S", cmd, ...argv], {
    stdio: ["ignore", "ignore", "pipe"],
    env,
    maxBuffer: 64 * MiB,
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(" ")} failed: ${r.stderr}`);
  const [kib, user, system] = readFileSync(timeFile, "utf8").trim().split("\n").pop().split(" ").map(Number);
  rmSync(timeFile, { force: true });
  return { seconds, rssMiB: kib / 1024, cpuSeconds: user + system, stderr: r.stderr.toString() };
}

/** The middle value (upper middle for an even count). */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One line: cores, CPU model, RAM, available memory and load average right now, node. */
export function machine() {
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown";
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  const kib = (key) => Number(meminfo.match(new RegExp(`${key}:\\s*(\\d+)`))?.[1] ?? NaN);
  const gib = (k) => (k / 1024 ** 2).toFixed(1);
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  return (
    `nproc ${execFileSync("nproc").toString().trim()}, ${cpu}, ${gib(kib("MemTotal"))} GiB RAM ` +
    `(${gib(kib("MemAvailable"))} GiB available), load average ${load}; node ${process.version}`
  );
}

/** Replaces the block between `<!-- bench:TAG -->` markers in bench/results.md (appends it if absent). */
export function writeResultsBlock(tag, text) {
  const target = join(here, "results.md");
  const [open, close] = [`<!-- bench:${tag} -->`, `<!-- /bench:${tag} -->`];
  const block = `${open}\n${text}\n${close}`;
  const old = existsSync(target) ? readFileSync(target, "utf8") : "# Benchmark results\n";
  const at = old.indexOf(open);
  const next = at >= 0 ? old.slice(0, at) + block + old.slice(old.indexOf(close) + close.length) : `${old.trimEnd()}\n\n${block}\n`;
  writeFileSync(target, next);
  process.stderr.write(`written to ${target}\n`);
}
