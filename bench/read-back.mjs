/**
 * The commands users run after quantize, against quantize itself (issue #12): `npm run bench --
 * --read-back [--sizes 256M,2G,4G] [--runs N] [--modes int8,g32]`.
 *
 * For each set (256M: 16 × 4096×1024 F32; 2G: 128 of them; 4G: 17 × 16384×4096 F32, 4.25 GiB with
 * 256 MiB tensors) and mode (`--int8`; `--int4 --block-size 32`), with the default threads (one
 * worker per core), each writing a new output on a flushed disk: the quantize, then on its output
 * `verify` (integrity only), `verify --against` the source and `dequantize` to F32, and `inspect
 * --stats` of the source, interleaved run by run; medians, the largest peak RSS, and each
 * command's ratio to the quantize (targets: verify ≤ 0.5 ×, the others ≤ 1.5 ×; memory ≤ 2 × the
 * largest tensor + 150 MiB).
 *
 * `dequantize` writes the F32 tensors back, four to eight times the bytes quantize writes, so once
 * those bytes pass the kernel's dirty-page limits its time is the disk's. Each run therefore also
 * times `cp` of dequantize's output to a new file (after the same `sync`): the OS's floor for
 * writing that many bytes right then, printed beside dequantize.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { generate, kquant, machine, measure, median, MiB, root, work, writeResultsBlock } from "./common.mjs";

const SETS = {
  "256M": { count: 16, shape: [4096, 1024] },
  "2G": { count: 128, shape: [4096, 1024] },
  "4G": { count: 17, shape: [16384, 4096] },
};
const MODES = {
  int8: ["--int8"],
  g32: ["--int4", "--block-size", "32"],
};
/** Each command's target ratio to the quantize; the quantize and the write floor have none. */
const TARGETS = { verify: 0.5, "verify --against": 1.5, dequantize: 1.5, "inspect --stats": 1.5 };
/** The row of the write floor: `cp`, not a kquant command. */
const FLOOR = "cp of dequantize's output";

function option(args, name, fallback) {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
}

export function runReadBackBench(args) {
  const sizes = option(args, "--sizes", "256M").split(",");
  const modes = option(args, "--modes", "int8,g32").split(",");
  for (const s of sizes) if (!(s in SETS)) throw new Error(`--sizes: ${s} is not one of ${Object.keys(SETS).join(", ")}`);
  for (const m of modes) if (!(m in MODES)) throw new Error(`--modes: ${m} is not one of ${Object.keys(MODES).join(", ")}`);
  mkdirSync(work, { recursive: true });
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" }); // time the code as it is now
  const startMachine = machine();
  for (const size of sizes) {
    const { count, shape } = SETS[size];
    const runs = Number(option(args, "--runs", size === "256M" ? 5 : 3));
    const source = join(work, `readback-${size}-f32.safetensors`);
    process.stderr.write(`generating ${source}\n`);
    generate(source, "F32", count, shape);
    const largestMiB = (shape[0] * shape[1] * 4) / MiB;
    const rows = [];
    for (const mode of modes) {
      const quantized = join(work, `readback-${size}-${mode}.safetensors`);
      const restored = join(work, `readback-${size}-${mode}.f32.safetensors`);
      const copied = `${restored}.copy`;
      const commands = {
        quantize: ["quantize", source, ...MODES[mode], "-o", quantized, "--force", "--quiet"],
        verify: ["verify", quantized],
        "verify --against": ["verify", quantized, "--against", source],
        dequantize: ["dequantize", quantized, "-o", restored, "--force", "--quiet"],
        // The source's statistics: the same bytes quantize reads, summarised instead.
        "inspect --stats": ["inspect", source, "--stats"],
      };
      const names = [...Object.keys(commands), FLOOR];
      const times = Object.fromEntries(names.map((c) => [c, []]));
      const rss = Object.fromEntries(names.map((c) => [c, 0]));
      const outputOf = { quantize: quantized, dequantize: restored };
      for (let run = 0; run < runs; run++) {
        for (const [name, argv] of Object.entries(commands)) {
          process.stderr.write(`${size} ${mode} ${name} run ${run + 1}/${runs}\n`);
          // Each command starts on a quiet disk and writes a new file: the previous run's output
          // is removed and the dirty pages flushed outside the timing, so neither the file
          // system's flush of a file replaced by rename (ext4's auto_da_alloc) nor the writeback
          // of the runs before lands in one command's time. (Replacing an existing output is
          // timed separately: see bench/results.md.)
          if (outputOf[name]) rmSync(outputOf[name], { force: true });
          execFileSync("sync");
          // As users run them: default threads (one worker per core, here 2; verify alone stays on
          // the main thread below 128 MiB of stored tensors).
          const m = measure(process.execPath, [kquant, ...argv]);
          times[name].push(m.seconds);
          rss[name] = Math.max(rss[name], m.rssMiB);
          if (name === "dequantize") {
            rmSync(copied, { force: true });
            execFileSync("sync");
            const floor = measure("cp", [restored, copied]);
            times[FLOOR].push(floor.seconds);
            rss[FLOOR] = Math.max(rss[FLOOR], floor.rssMiB);
            rmSync(copied, { force: true });
          }
        }
      }
      rmSync(restored, { force: true });
      const q = median(times.quantize);
      for (const name of names) {
        const t = median(times[name]);
        rows.push({ mode, name, runs, t, range: [Math.min(...times[name]), Math.max(...times[name])], ratio: t / q, rss: rss[name] });
      }
    }
    const f = (x, d = 2) => x.toFixed(d);
    const bound = 2 * largestMiB + 150;
    const lines = [
      `Machine at the start: ${startMachine}; load average at the end ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}.`,
      `${size}: ${count} F32 tensors of ${shape.join("×")} (${f((count * largestMiB) / 1024, 2)} GiB), default threads (${availableParallelism()} cores); seconds are medians of ${rows[0].runs} interleaved runs; ratio = the command's median / the quantize's median.`,
      "",
      "| mode | command | s (range) | ratio to quantize | target | peak RSS MiB | bound 2×T+150 |",
      "|---|---|---:|---:|---:|---:|---:|",
      ...rows.map(
        (r) =>
          `| ${r.mode} | ${r.name} | ${f(r.t)} (${f(r.range[0])}-${f(r.range[1])}) | ${f(r.ratio)} | ${r.name in TARGETS ? `≤ ${TARGETS[r.name]}` : "-"} | ${f(r.rss, 0)} | ${r.name === FLOOR ? "-" : f(bound, 0)} |`,
      ),
      "",
      ...modes.map((mode) => {
        const t = (name) => rows.find((r) => r.mode === mode && r.name === name).t;
        return `${mode}: dequantize / ${FLOOR} = ${f(t("dequantize") / t(FLOOR))}.`;
      }),
    ];
    const table = lines.join("\n");
    process.stdout.write(`${table}\n`);
    if (runs >= 3) writeResultsBlock(`read-back-${size}`, table);
  }
}
