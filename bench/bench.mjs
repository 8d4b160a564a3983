#!/usr/bin/env node
/**
 * `npm run bench [-- --large] [-- --runs N]`: times kquant (A) against the NumPy baseline doing
 * Keras's to_numpy work (B, bench/baseline.py) and against `cp` (C, the floor of reading and
 * writing), with the peak resident memory of each, and writes bench/results.md.
 *
 * Inputs are generated in bench/work/ (gitignored) and read once before timing, so every
 * contender reads from the page cache; outputs go to the same disk. Each cell is the median of
 * --runs runs (default 3), measured round-robin so drift hits every contender alike.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const work = join(here, "work");
const args = process.argv.slice(2);
const large = args.includes("--large");
const runsAt = args.indexOf("--runs");
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : large ? 1 : 3;
const MiB = 1024 * 1024;

/** A safetensors file of `count` tensors of `shape`, deterministic pseudo-normal values. */
function generate(path, dtype, count, shape) {
  if (existsSync(path)) return;
  const width = dtype === "F32" ? 4 : 2;
  const elements = shape[0] * shape[1];
  const bytes = elements * width;
  const header = {};
  for (let i = 0; i < count; i++) {
    header[`layers.${String(i).padStart(3, "0")}.weight`] = { dtype, shape, data_offsets: [i * bytes, (i + 1) * bytes] };
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(`${path}.tmp`, "w");
  writeSync(fd, prefix);
  writeSync(fd, json);
  const f32 = new Float32Array(elements);
  const u32 = new Uint32Array(f32.buffer);
  const bf16 = new Uint16Array(elements);
  let s = 0x9e3779b9;
  for (let t = 0; t < count; t++) {
    // xorshift32; the sum of four uniforms is close enough to a normal for weights. Row scales
    // vary so per-channel scales differ.
    for (let i = 0; i < elements; i++) {
      let acc = 0;
      for (let k = 0; k < 4; k++) {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        acc += (s >>> 0) / 4294967296;
      }
      f32[i] = (acc - 2) * (0.01 + ((i / shape[1]) | 0) % 7 * 0.003);
    }
    if (dtype === "F32") writeSync(fd, f32);
    else {
      for (let i = 0; i < elements; i++) bf16[i] = (u32[i] + 0x7fff + ((u32[i] >>> 16) & 1)) >>> 16;
      writeSync(fd, bf16);
    }
  }
  closeSync(fd);
  execFileSync("mv", [`${path}.tmp`, path]);
}

function python() {
  const venv = join(here, ".venv");
  const py = join(venv, "bin", "python");
  if (!existsSync(py)) execFileSync("python3", ["-m", "venv", venv], { stdio: "inherit" });
  execFileSync(join(venv, "bin", "pip"), ["install", "-q", "--disable-pip-version-check", "-r", join(here, "requirements.txt")], {
    stdio: "inherit",
  });
  return py;
}

/** Wall seconds and peak RSS (MiB, from /usr/bin/time's %M) of one command. */
function measure(cmd, argv, env = process.env) {
  const timeFile = join(work, "time.txt");
  const start = process.hrtime.bigint();
  const r = spawnSync("/usr/bin/time", ["-o", timeFile, "-f", "%M", cmd, ...argv], { stdio: ["ignore", "ignore", "pipe"], env });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(" ")} failed: ${r.stderr}`);
  const kib = Number(readFileSync(timeFile, "utf8").trim().split("\n").pop());
  return { seconds, rssMiB: kib / 1024 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function main() {
  mkdirSync(work, { recursive: true });
  const kquant = join(root, "bin", "kquant.js");
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" }); // time the code as it is now

  // 4096×1024 F32 is 16 MiB; --large uses 16384×4096 (256 MiB F32) tensors for a >4 GiB checkpoint.
  const inputs = large
    ? [{ label: "F32, 17 × 16384×4096", path: join(work, "large-f32.safetensors"), dtype: "F32", count: 17, shape: [16384, 4096] }]
    : [
        { label: "F32, 16 × 4096×1024", path: join(work, "f32.safetensors"), dtype: "F32", count: 16, shape: [4096, 1024] },
        { label: "BF16, 32 × 4096×1024", path: join(work, "bf16.safetensors"), dtype: "BF16", count: 32, shape: [4096, 1024] },
      ];
  for (const input of inputs) {
    process.stderr.write(`generating ${input.path}\n`);
    generate(input.path, input.dtype, input.count, input.shape);
  }
  const py = large ? null : python();
  const numpyVersion = py ? execFileSync(py, ["-c", "import numpy; print(numpy.__version__)"]).toString().trim() : "-";
  // Leave OPENBLAS_* alone except to unset both for numpy, per the machine's notes (they slow a
  // current numpy; these element-wise ops do not touch BLAS anyway).
  const pyEnv = { ...process.env };
  delete pyEnv.OPENBLAS_CORETYPE;
  delete pyEnv.OPENBLAS_L2_SIZE;

  const modes = [
    { name: "int8", flags: ["--int8"] },
    { name: "int4", flags: ["--int4"] },
    { name: "int4-block128", flags: ["--int4", "--block-size", "128"] },
    { name: "float8", flags: ["--float8"] },
  ];
  const rows = [];
  for (const input of inputs) {
    const bytes = statSync(input.path).size;
    const largest = input.shape[0] * input.shape[1] * (input.dtype === "F32" ? 4 : 2);
    const out = join(work, "out.safetensors");
    const cpOut = join(work, "copy.safetensors");
    execFileSync("cat", [input.path], { stdio: ["ignore", "ignore", "inherit"] }); // warm the page cache
    const cells = modes.map(() => ({ a: [], b: [], aRss: [], bRss: [] }));
    const c = { s: [], rss: [] };
    for (let run = 0; run < runs; run++) {
      for (const [i, mode] of modes.entries()) {
        process.stderr.write(`${input.label} ${mode.name} run ${run + 1}/${runs}\n`);
        const a = measure(process.execPath, [kquant, "quantize", input.path, ...mode.flags, "-o", out, "--force", "--quiet"]);
        cells[i].a.push(a.seconds);
        cells[i].aRss.push(a.rssMiB);
        rmSync(out, { force: true });
        rmSync(`${out}.json`, { force: true });
        if (py) {
          const b = measure(py, [join(here, "baseline.py"), mode.name, input.path, out], pyEnv);
          cells[i].b.push(b.seconds);
          cells[i].bRss.push(b.rssMiB);
          rmSync(out, { force: true });
        }
      }
      const cp = measure("cp", [input.path, cpOut]);
      c.s.push(cp.seconds);
      c.rss.push(cp.rssMiB);
      rmSync(cpOut, { force: true });
    }
    const cs = median(c.s);
    for (const [i, mode] of modes.entries()) {
      const a = median(cells[i].a);
      const b = py ? median(cells[i].b) : NaN;
      rows.push({
        input: input.label,
        mib: bytes / MiB,
        largestMiB: largest / MiB,
        mode: mode.name,
        a,
        b,
        c: cs,
        aRss: Math.max(...cells[i].aRss),
        bRss: py ? Math.max(...cells[i].bRss) : NaN,
        cRss: Math.max(...c.rss),
      });
    }
  }
  report(rows, numpyVersion);
}

function report(rows, numpyVersion) {
  const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "-");
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown";
  const lines = [
    `Machine: ${cpus().length} cores (nproc ${execFileSync("nproc").toString().trim()}), ${cpu}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM;` +
      ` node ${process.version}; numpy ${numpyVersion}. Medians of ${runs} run(s); peak RSS is the largest of the runs.`,
    "",
    "| input | MiB | mode | A kquant s | B numpy s | C cp s | A/B | A/C | A peak RSS MiB | bound 2×T+150 | B peak RSS MiB | C peak RSS MiB |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.input} | ${f(r.mib, 0)} | ${r.mode} | ${f(r.a)} | ${f(r.b)} | ${f(r.c)} | ${f(r.a / r.b)} | ${f(r.a / r.c)} | ${f(r.aRss, 0)} | ${f(2 * r.largestMiB + 150, 0)} | ${f(r.bRss, 0)} | ${f(r.cRss, 0)} |`,
    );
  }
  const table = lines.join("\n");
  process.stdout.write(`${table}\n`);
  // results.md keeps hand-written notes; only this variant's block between its markers is replaced.
  const target = join(here, "results.md");
  const tag = large ? "large" : "standard";
  const [open, close] = [`<!-- bench:${tag} -->`, `<!-- /bench:${tag} -->`];
  const block = `${open}\n${table}\n${close}`;
  const old = existsSync(target) ? readFileSync(target, "utf8") : "# Benchmark results\n";
  const at = old.indexOf(open);
  const next = at >= 0 ? old.slice(0, at) + block + old.slice(old.indexOf(close) + close.length) : `${old.trimEnd()}\n\n${block}\n`;
  writeFileSync(target, next);
  process.stderr.write(`written to ${target}\n`);
}

main();
