/**
 * kquant against llama.cpp's llama-quantize on the same tensors (issue #12): `npm run bench --
 * --llama [--sizes 256M,2G] [--pairs N] [--dtypes F32,BF16]`.
 *
 * Sizes name tensor sets of 4096×1024 tensors: 256M is 16 of them (256 MiB as F32, 128 MiB as
 * BF16), 2G is 128 (2 GiB as F32, 1 GiB as BF16). Each set is written once as safetensors (kquant's
 * input) and as GGUF with the same names, shapes and bytes (llama-quantize's, written by
 * gguf_from_safetensors.py with the `gguf` package). Cases, both tools on 2 threads:
 *   kquant --int8 (per channel)              vs Q8_0 (blocks of 32)
 *   kquant --int4 --block-size 32 (grouped)  vs Q4_1 (blocks of 32 with a minimum) and Q4_0
 * A pair is one kquant run and one llama-quantize run back to back, their order alternating from
 * pair to pair; pairs of every case are interleaved, so load drifting over the run hits both tools
 * alike. A ratio is kquant's median over llama-quantize's; the spread is the range of the pairs'
 * own ratios. Before timing, each llama-quantize case runs once and its log must show every tensor
 * converted to the target type.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { generate, here, kquant, machine, measure, median, MiB, root, work, writeResultsBlock } from "../common.mjs";

const THREADS = 2;
const SHAPE = [4096, 1024];
const SIZES = { "256M": 16, "2G": 128 };
const CASES = [
  { name: "int8 vs Q8_0", kquant: ["--int8"], llama: "Q8_0" },
  { name: "int4 g32 vs Q4_1", kquant: ["--int4", "--block-size", "32"], llama: "Q4_1" },
  { name: "int4 g32 vs Q4_0", kquant: ["--int4", "--block-size", "32"], llama: "Q4_0" },
];

function option(args, name, fallback) {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
}

/** The llama-quantize binary, or the reason it cannot be had (bench/llama/build.sh's own words). */
function buildLlamaQuantize() {
  const r = spawnSync("bash", [join(here, "llama", "build.sh")], { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * MiB });
  if (r.status === 0) return { binary: r.stdout.toString().trim() };
  const lines = r.stderr.toString().trim().split("\n");
  return { reason: `build.sh exited ${r.status}: ${lines[lines.length - 1] ?? ""}` };
}

/** The bench Python environment's interpreter (scripts/pyenv/bench.txt), or why not. */
function benchPython() {
  const r = spawnSync("bash", [join(root, "scripts", "pyenv.sh"), "bench"], { stdio: ["ignore", "pipe", "inherit"] });
  return r.status === 0 ? { python: r.stdout.toString().trim() } : { reason: `scripts/pyenv.sh bench exited ${r.status}` };
}

/** Throws unless llama-quantize's log shows each of `count` tensors converted to `type`. */
function checkAllQuantized(log, count, type) {
  const converted = log.match(new RegExp(`converting to ${type.toLowerCase()} \\.\\.`, "g"))?.length ?? 0;
  if (converted !== count) {
    throw new Error(`llama-quantize converted ${converted} of ${count} tensors to ${type}:\n${log}`);
  }
}

/** Runs the comparison, prints one table per size and puts it in bench/results.md. */
export function runLlamaBench(args) {
  const sizes = option(args, "--sizes", "256M").split(",");
  const dtypes = option(args, "--dtypes", "F32,BF16").split(",");
  const pairsOption = option(args, "--pairs", undefined);
  for (const size of sizes) if (!(size in SIZES)) throw new Error(`--sizes: ${size} is not one of ${Object.keys(SIZES).join(", ")}`);
  mkdirSync(work, { recursive: true });
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" }); // time the code as it is now

  let llama = buildLlamaQuantize();
  let python = null;
  if (llama.binary) {
    const py = benchPython();
    if (py.python) python = py.python;
    else llama = { reason: py.reason };
  }
  const notes = [];
  if (!llama.binary) notes.push(`llama-quantize rows skipped: ${llama.reason}`);
  const buildSecondsFile = llama.binary ? join(dirname(dirname(llama.binary)), "build-seconds") : null;
  const buildSeconds = buildSecondsFile && existsSync(buildSecondsFile) ? readFileSync(buildSecondsFile, "utf8").trim() : "?";
  const startMachine = machine();

  const rows = [];
  for (const size of sizes) {
    const count = SIZES[size];
    const pairs = Number(pairsOption ?? (size === "256M" ? 5 : 3));
    for (const dtype of dtypes) {
      const stem = join(work, `llama-${size}-${dtype.toLowerCase()}`);
      const safetensors = `${stem}.safetensors`;
      const gguf = `${stem}.gguf`;
      process.stderr.write(`generating ${safetensors}\n`);
      generate(safetensors, dtype, count, SHAPE);
      if (llama.binary && !existsSync(gguf)) {
        process.stderr.write(`writing ${gguf}\n`);
        execFileSync(python, [join(here, "llama", "gguf_from_safetensors.py"), safetensors, `${gguf}.tmp`], { stdio: "inherit" });
        execFileSync("mv", [`${gguf}.tmp`, gguf]);
      }
      for (const file of [safetensors, ...(llama.binary ? [gguf] : [])]) execFileSync("cat", [file], { stdio: ["ignore", "ignore", "inherit"] });

      const kOut = join(work, "out.safetensors");
      const lOut = join(work, "out.gguf");
      const runKquant = (c) => {
        const m = measure(process.execPath, [kquant, "quantize", safetensors, ...c.kquant, "--threads", String(THREADS), "-o", kOut, "--force", "--quiet"]);
        rmSync(kOut, { force: true });
        rmSync(`${kOut}.json`, { force: true });
        return m;
      };
      const runLlama = (c) => {
        const m = measure(llama.binary, [gguf, lOut, c.llama, String(THREADS)]);
        rmSync(lOut, { force: true });
        return m;
      };
      if (llama.binary) for (const c of CASES) checkAllQuantized(runLlama(c).stderr, count, c.llama); // also warms up

      const cells = CASES.map(() => ({ k: [], l: [], kRss: [], lRss: [] }));
      for (let pair = 0; pair < pairs; pair++) {
        for (const [i, c] of CASES.entries()) {
          process.stderr.write(`${size} ${dtype} ${c.name} pair ${pair + 1}/${pairs}\n`);
          const order = pair % 2 === 0 ? ["k", "l"] : ["l", "k"];
          for (const who of order) {
            if (who === "l" && !llama.binary) continue;
            const m = who === "k" ? runKquant(c) : runLlama(c);
            cells[i][who].push(m.seconds);
            cells[i][`${who}Rss`].push(m.rssMiB);
          }
        }
      }
      for (const [i, c] of CASES.entries()) {
        const cell = cells[i];
        const pairRatios = cell.l.map((l, p) => cell.k[p] / l);
        rows.push({
          size,
          dtype,
          mib: (count * SHAPE[0] * SHAPE[1] * (dtype === "F32" ? 4 : 2)) / MiB,
          largestMiB: (SHAPE[0] * SHAPE[1] * (dtype === "F32" ? 4 : 2)) / MiB,
          case: c.name,
          pairs,
          k: median(cell.k),
          kRange: [Math.min(...cell.k), Math.max(...cell.k)],
          l: cell.l.length ? median(cell.l) : NaN,
          lRange: cell.l.length ? [Math.min(...cell.l), Math.max(...cell.l)] : [NaN, NaN],
          ratioRange: pairRatios.length ? [Math.min(...pairRatios), Math.max(...pairRatios)] : [NaN, NaN],
          kRss: Math.max(...cell.kRss),
          lRss: cell.lRss.length ? Math.max(...cell.lRss) : NaN,
        });
      }
    }
  }
  const run = { startMachine, endLoad: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "), buildSeconds, binary: llama.binary };
  for (const size of sizes) {
    const own = rows.filter((r) => r.size === size);
    const table = report(own, notes, run);
    // Fewer than 3 pairs is a quick look, not a figure for results.md.
    if (own.every((r) => r.pairs >= 3)) writeResultsBlock(`llama-${size}`, table);
  }
}

function report(rows, notes, run) {
  const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "-");
  const range = ([a, b], d = 2) => (Number.isFinite(a) ? `${f(a, d)}-${f(b, d)}` : "-");
  const lines = [
    `Machine at the start: ${run.startMachine}; load average at the end ${run.endLoad}.`,
    ...(run.binary
      ? [`llama-quantize: llama.cpp 0c1e570 vendored by llama-cpp-python 0.3.36, Release, GGML_NATIVE, CPU only (built in ${run.buildSeconds} by bench/llama/build.sh).`]
      : []),
    `Both tools on ${THREADS} threads; seconds are medians of the pairs, peak RSS the largest of the runs; ` +
      `ratio = kquant / llama-quantize, spread = range of the pairs' own ratios.`,
    ...notes,
    "",
    "| set | source | case | pairs | kquant s (range) | llama-quantize s (range) | ratio | spread | kquant peak RSS MiB | bound 2×T+150 | llama-quantize peak RSS MiB |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.size} | ${r.dtype} ${f(r.mib, 0)} MiB | ${r.case} | ${r.pairs} | ${f(r.k)} (${range(r.kRange)}) | ${f(r.l)} (${range(r.lRange)}) | ` +
        `${f(r.k / r.l)} | ${range(r.ratioRange)} | ${f(r.kRss, 0)} | ${f(2 * r.largestMiB + 150, 0)} | ${f(r.lRss, 0)} |`,
    );
  }
  const table = lines.join("\n");
  process.stdout.write(`${table}\n`);
  return table;
}
