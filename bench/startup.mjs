#!/usr/bin/env node
/**
 * `node bench/startup.mjs [--runs N] [-- label=command ...]`: start-up and small-run costs,
 * measured round-robin (so a busy machine hits every command alike): the median wall time and the
 * mean CPU time (user + system, from the children's totals in /proc/self/stat, so Linux only) of
 * each command, and each one's ratio to `node -e 0`. NODE_EXTRA_CA_CERTS is unset for the
 * children, as users run kquant (loading those certificates costs Node's start tens of ms).
 *
 * Default commands: `node -e 0`, `kquant --version`, and a quantize of the demo checkpoint.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const runsAt = args.indexOf("--runs");
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 20;
const bin = join(root, "bin", "kquant.js");
const out = mkdtempSync(join(tmpdir(), "kquant-startup-"));
const dash = args.indexOf("--");
const commands =
  dash >= 0
    ? args.slice(dash + 1).map((a) => {
        const at = a.indexOf("=");
        return { label: a.slice(0, at), argv: a.slice(at + 1).split(" ") };
      })
    : [
        { label: "node -e 0", argv: ["node", "-e", "0"] },
        { label: "kquant --version", argv: ["node", bin, "--version"] },
        {
          label: "kquant quantize demo --int8",
          argv: ["node", bin, "quantize", join(root, "fixtures", "demo", "tiny-llama.safetensors"), "--int8", "-o", join(out, "q.safetensors"), "--force", "-q"],
        },
      ];

const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
const TICK_MS = 10; // USER_HZ is 100 on Linux

/** The CPU time (ms) of this process's waited-for children so far. */
function childrenCpuMs() {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 16 and 17 of stat (cutime, cstime), counted from after the command name.
    return (Number(fields[13]) + Number(fields[14])) * TICK_MS;
  } catch {
    return NaN;
  }
}

const wall = commands.map(() => []);
const cpu = commands.map(() => 0);
for (let r = 0; r < runs; r++) {
  commands.forEach((c, i) => {
    const before = childrenCpuMs();
    const t = process.hrtime.bigint();
    const res = spawnSync(c.argv[0], c.argv.slice(1), { env, stdio: ["ignore", "ignore", "pipe"] });
    wall[i].push(Number(process.hrtime.bigint() - t) / 1e6);
    cpu[i] += childrenCpuMs() - before;
    if (res.status !== 0) throw new Error(`${c.label} failed (${res.status}): ${res.stderr}`);
  });
}
rmSync(out, { recursive: true, force: true });

const median = (xs) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
const base = { wall: median(wall[0]), cpu: cpu[0] / runs };
console.log(`${runs} runs each, round-robin; ratios to the first command`);
commands.forEach((c, i) => {
  const w = median(wall[i]);
  const u = cpu[i] / runs;
  console.log(`${c.label.padEnd(32)} wall ${w.toFixed(1).padStart(7)} ms (×${(w / base.wall).toFixed(2)})   cpu ${u.toFixed(1).padStart(7)} ms (×${(u / base.cpu).toFixed(2)})`);
});
