/**
 * The fuzz pass of issue #22: valid inputs of every kind kquant reads (safetensors, .npy, .npz, a
 * sharded index, a --shard part file, a sidecar manifest, a recipe) have their headers mutated with
 * a seeded generator, and the command that reads each runs on every mutant. Whatever the bytes, a
 * run must end with exit 0, 1 or 2, a failure as one line, no stack trace, nothing left behind but
 * a successful run's declared outputs, and every input file and every file beside it unchanged.
 *
 * `runFuzz` is shared by the default suite (a few hundred mutants, test/hostile/fuzz.test.ts) and
 * the slow one (thousands); KQUANT_FUZZ=<count> runs more locally.
 */
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { writeModelFolder } from "../layouts/model-folder.js";
import { runCli, type CliResult } from "../support/cli.js";
import { gaussian, writeSafetensors } from "../support/files.js";
import { changes, snapshot } from "./harness.js";

/** A seeded generator (mulberry32): the same seed, the same mutants. */
export function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * n | 0;
  };
}

/** One kind of input: the file to mutate, how many of its first bytes are header, and the command. */
export interface Target {
  name: string;
  /** The file mutated, relative to the case folder. */
  file: string;
  /** Bytes of header (mutations land there, plus a truncation anywhere). */
  headerBytes: number;
  /** The command, run in the case folder. */
  args: string[];
  /** Paths a successful run may add (relative, prefixes). */
  outputs: string[];
}

const NUMBERS = ["-1", "0", "1e308", "18446744073709551615", "9007199254740993", "-0", "1.5", "NaN", "[]", "{}", "null", '"x"', "4294967296"];
const STRINGS = ['"../../escape"', '"/etc/passwd"', '""', '"\\u0007\\u001b[31m"', '"a\\\\b"', '"model.safetensors"', '"*"', `"${"*a".repeat(30)}"`];

/** A mutant of `bytes` whose changes fall in the first `header` bytes (or a truncation). */
export function mutate(bytes: Uint8Array, header: number, r: (n: number) => number): Uint8Array {
  const out = Buffer.from(bytes);
  const h = Math.max(1, Math.min(header, out.length));
  const kind = r(8);
  if (kind === 0) {
    out[r(h)] = r(256);
    return out;
  }
  if (kind === 1) {
    out[r(h)]! ^= 1 << r(8);
    return out;
  }
  if (kind === 2) return out.subarray(0, r(out.length));
  if (kind === 3) {
    const at = r(h);
    return Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + r(16)))]);
  }
  if (kind === 4) {
    const at = r(h);
    return Buffer.concat([out.subarray(0, at), Buffer.from(Array.from({ length: 1 + r(8) }, () => r(256))), out.subarray(at)]);
  }
  // Token-level: replace a number or a string in the header text by a hostile one.
  const text = out.subarray(0, h).toString("latin1");
  const tokens = [...text.matchAll(kind < 6 ? /-?\d+(\.\d+)?/g : /"(?:[^"\\]|\\.)*"/g)];
  if (tokens.length === 0) {
    out[r(h)] = r(256);
    return out;
  }
  const t = tokens[r(tokens.length)]!;
  const pool = kind < 6 ? NUMBERS : STRINGS;
  const replacement = pool[r(pool.length)]!;
  const start = t.index!;
  const mutated = Buffer.concat([out.subarray(0, start), Buffer.from(replacement, "latin1"), out.subarray(start + t[0].length)]);
  // safetensors: keep the 8-byte length in step with a header that grew or shrank.
  if (bytes.length >= 8 && header > 8 && Buffer.from(bytes).readBigUInt64LE(0) === BigInt(header - 8) && r(2) === 0) {
    mutated.writeBigUInt64LE(BigInt(header - 8 + replacement.length - t[0].length), 0);
  }
  return mutated;
}

/** A .npy v1.0 file of float32 `data` shaped `shape`. */
function npy(data: Float32Array, shape: number[]): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  const pad = 64 - ((10 + dict.length + 1) % 64);
  const header = `${dict}${" ".repeat(pad)}\n`;
  const prelude = Buffer.alloc(10);
  Buffer.from("\x93NUMPY", "latin1").copy(prelude);
  prelude[6] = 1;
  prelude.writeUInt16LE(header.length, 8);
  return Buffer.concat([prelude, Buffer.from(header, "latin1"), Buffer.from(data.buffer)]);
}

/** Builds the valid inputs in `dir` (once) and returns the targets reading them. */
export async function buildTargets(dir: string): Promise<Target[]> {
  const ok = async (...args: string[]): Promise<void> => {
    const r = await runCli(...args);
    expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  };
  const t = [
    { name: "a.weight", dtype: "F32" as const, shape: [8, 16], data: gaussian(128, 3) },
    { name: "a.bias", dtype: "F32" as const, shape: [8], data: gaussian(8, 4) },
    { name: "b.weight", dtype: "F32" as const, shape: [16, 8], data: gaussian(128, 5) },
  ];
  await writeSafetensors(join(dir, "m.safetensors"), t, { format: "pt" });
  writeFileSync(join(dir, "a.npy"), npy(gaussian(64, 6), [8, 8]));
  mkdirSync(join(dir, "sharded"));
  await writeModelFolder(join(dir, "sharded"), true);
  await ok("quantize", join(dir, "m.safetensors"), "--int8", "-o", join(dir, "q.safetensors"), "-q");
  await ok("dequantize", join(dir, "q.safetensors"), "-o", join(dir, "d.npz"));
  mkdirSync(join(dir, "parts"));
  for (const job of ["1/2", "2/2"]) await ok("quantize", join(dir, "sharded", "model.safetensors.index.json"), "--int8", "--shard", job, "-o", join(dir, "parts", "m.safetensors.index.json"), "-q");
  writeFileSync(join(dir, "recipe.json"), JSON.stringify({ rules: [{ match: "*.bias", skip: true }, { match: ["a.*"], mode: "int4", block_size: 8 }, { match: "*", mode: "int8" }] }));
  const headerOf = (file: string): number => {
    const b = readFileSync(join(dir, file));
    if (file.endsWith(".safetensors")) return 8 + Number(b.readBigUInt64LE(0));
    if (file.endsWith(".npy")) return 10 + b.readUInt16LE(8);
    return b.length;
  };
  const part = readdirSync(join(dir, "parts")).find((n) => n.endsWith("part-1-of-2.json"))!;
  return [
    { name: "safetensors: inspect", file: "m.safetensors", headerBytes: headerOf("m.safetensors"), args: ["inspect", "m.safetensors"], outputs: [] },
    { name: "safetensors: quantize", file: "m.safetensors", headerBytes: headerOf("m.safetensors"), args: ["quantize", "m.safetensors", "--int8", "-o", "out.safetensors", "-q"], outputs: ["out.safetensors"] },
    { name: "kquant output: verify", file: "q.safetensors", headerBytes: headerOf("q.safetensors"), args: ["verify", "q.safetensors"], outputs: [] },
    { name: "kquant output: dequantize", file: "q.safetensors", headerBytes: headerOf("q.safetensors"), args: ["dequantize", "q.safetensors", "-o", "out.safetensors"], outputs: ["out.safetensors"] },
    { name: "sidecar manifest: verify", file: "q.safetensors.json", headerBytes: headerOf("q.safetensors.json"), args: ["verify", "q.safetensors"], outputs: [] },
    { name: "npy: quantize", file: "a.npy", headerBytes: headerOf("a.npy"), args: ["quantize", "a.npy", "--int8", "-o", "out.safetensors", "-q"], outputs: ["out.safetensors"] },
    { name: "npz: inspect", file: "d.npz", headerBytes: 200, args: ["inspect", "d.npz"], outputs: [] },
    { name: "npz: quantize", file: "d.npz", headerBytes: 200, args: ["quantize", "d.npz", "--int8", "-o", "out.safetensors", "-q"], outputs: ["out.safetensors"] },
    { name: "index: quantize", file: "sharded/model.safetensors.index.json", headerBytes: headerOf("sharded/model.safetensors.index.json"), args: ["quantize", "sharded/model.safetensors.index.json", "--int8", "-o", "out/m.safetensors.index.json", "-q"], outputs: ["out/"] },
    { name: "model folder: quantize", file: "sharded/config.json", headerBytes: headerOf("sharded/config.json"), args: ["quantize", "sharded", "--int8", "-o", "outdir", "-q"], outputs: ["outdir"] },
    { name: "part file: merge-index", file: `parts/${part}`, headerBytes: headerOf(`parts/${part}`), args: ["merge-index", "parts"], outputs: ["parts/m.safetensors.index.json"] },
    { name: "recipe: quantize", file: "recipe.json", headerBytes: headerOf("recipe.json"), args: ["quantize", "m.safetensors", "--recipe", "recipe.json", "-o", "out.safetensors", "-q"], outputs: ["out.safetensors"] },
  ];
}

/** What one mutant run left: the problems found, empty when it behaved. */
export function judge(r: CliResult, before: Map<string, string>, after: Map<string, string>, target: Target, mutated: string): string[] {
  const problems: string[] = [];
  if (![0, 1, 2].includes(r.code)) problems.push(`exit ${r.code}`);
  if (/internal error|\n\s+at .+[:(]/.test(r.stderr)) problems.push("a stack trace or internal error");
  const lines = r.stderr.trimEnd().split("\n").filter((l) => l !== "" && !l.startsWith("kquant: warning:"));
  if (r.code === 2 && lines.length !== 1) problems.push(`${lines.length} error lines`);
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(r.stderr.replace(/\n/g, ""))) problems.push("control characters on stderr");
  const changed = changes(before, after).filter((p) => p !== mutated);
  // A successful run may also create the missing parent folder of its output (-o out/…).
  const allowed = (p: string) => r.code === 0 && target.outputs.some((o) => p === o || `${p}/` === o || p.startsWith(o) || p.startsWith(`${o}/`));
  const stray = changed.filter((p) => !allowed(p));
  if (stray.length > 0) problems.push(`changed ${stray.join(", ")}`);
  return problems;
}

/** Runs `args` in `cwd`: in process (runCli) or the built CLI (a hang reported as exit null). */
export type Runner = (args: string[], cwd: string) => Promise<CliResult>;

/** runCli in `cwd`. */
export const inProcess: Runner = async (args, cwd) => {
  const previous = process.cwd();
  process.chdir(cwd);
  try {
    return await runCli(...args);
  } finally {
    process.chdir(previous);
  }
};

/**
 * Runs `count` mutants (seeds seed0, seed0+1, …) spread over the targets with `runner` (default in
 * process); returns the failures and how often each target ended with each exit code.
 */
export async function runFuzz(base: string, count: number, seed0: number, runner: Runner = inProcess): Promise<{ failures: string[]; codes: Record<string, number> }> {
  const pristine = join(base, "pristine");
  mkdirSync(pristine);
  const targets = await buildTargets(pristine);
  const failures: string[] = [];
  const codes: Record<string, number> = {};
  const work = join(base, "work");
  for (let k = 0; k < count; k++) {
    const seed = seed0 + k;
    const r = rng(seed);
    const target = targets[seed % targets.length]!;
    rmSync(work, { recursive: true, force: true });
    copyTree(pristine, work);
    const original = readFileSync(join(work, target.file));
    writeFileSync(join(work, target.file), mutate(original, target.headerBytes, r));
    const before = snapshot(work);
    const result = await runner(target.args, work);
    codes[`${target.name} → ${result.code}`] = (codes[`${target.name} → ${result.code}`] ?? 0) + 1;
    const problems = judge(result, before, snapshot(work), target, target.file);
    // The mutated input itself must be unchanged too.
    if (before.get(target.file) !== snapshot(work).get(target.file)) problems.push("the input changed");
    if (problems.length > 0) failures.push(`seed ${seed} (${target.name}): ${problems.join("; ")}: ${result.stderr.trim().slice(0, 300)}`);
  }
  rmSync(work, { recursive: true, force: true });
  return { failures, codes };
}

function copyTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const e of readdirSync(from, { withFileTypes: true })) {
    if (e.isDirectory()) copyTree(join(from, e.name), join(to, e.name));
    else copyFileSync(join(from, e.name), join(to, e.name));
  }
}
