/**
 * Retired by issue #12 (llama-quantize is the anchor now, bench/llama/compare.mjs); kept to
 * reproduce the older tables. `npm run bench -- --numpy [--large] [--runs N]`: times kquant (A) against the NumPy baseline doing
 * Keras's to_numpy work (B, bench/baseline.py) and against `cp` (C, the floor of reading and
 * writing), with the peak resident memory of each, and writes bench/results.md.
 *
 * Inputs are generated in bench/work/ (gitignored) and read once before timing, so every
 * contender reads from the page cache; outputs go to the same disk. Each cell is the median of
 * --runs runs (default 3), measured round-robin so drift hits every contender alike.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { generate, here, kquant, measure, median, MiB, root, work, writeResultsBlock } from "./common.mjs";

let large = false;
let runs = 3;

function python() {
  const venv = join(here, ".venv");
  const py = join(venv, "bin", "python");
  if (!existsSync(py)) execFileSync("python3", ["-m", "venv", venv], { stdio: "inherit" });
  execFileSync(join(venv, "bin", "pip"), ["install", "-q", "--disable-pip-version-check", "-r", join(here, "requirements.txt")], {
    stdio: "inherit",
  });
  return py;
}

/** Runs the retired comparison; `args` are the bench's command-line arguments. */
export function runNumpyBench(args) {
  large = args.includes("--large");
  const runsAt = args.indexOf("--runs");
  runs = runsAt >= 0 ? Number(args[runsAt + 1]) : large ? 1 : 3;
  mkdirSync(work, { recursive: true });
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
  writeResultsBlock(large ? "large" : "standard", table);
}
