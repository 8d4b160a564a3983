/**
 * Real runs of the CLI bundled from the sources, disturbed while they work: interrupted on a
 * pseudo-terminal (util-linux `script`, so the progress bar is on) by Ctrl-C or SIGTERM, a disk that
 * fills up (a real tmpfs), an output folder removed, a source truncated. Each disturbance comes
 * once the run's temp file exists (with data in it, for the interrupts), so the run is mid-write.
 */
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error: a build script without type declarations
import { bundleCli } from "../../scripts/bundle.mjs";
import { fileHash, writeLargeCheckpoint } from "../support/files.js";
import { terminalRun, type TerminalRun } from "../support/terminal.js";
import { fillDisk, mountTmpfs } from "../support/tmpfs.js";

const MiB = 1024 * 1024;
const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";

let root: string;
let cli: string;
/** 128 MiB of float32 in 2 tensors: a quantize of it takes long enough to be caught mid-write. */
let input: string;
let inputHash: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "kquant-real-run-"));
  cli = join(root, "kquant.cjs");
  await bundleCli(cli, { standalone: true });
  input = join(root, "model.safetensors");
  writeLargeCheckpoint(input, 2, 64 * MiB);
  inputHash = fileHash(input);
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The first temp file in `dir` holding at least `bytes`, if any. */
function tempFileIn(dir: string, bytes: number): string | undefined {
  const temp = readdirSync(dir).find((n) => n.endsWith(".tmp"));
  return temp !== undefined && (statSync(join(dir, temp), { throwIfNoEntry: false })?.size ?? -1) >= bytes ? join(dir, temp) : undefined;
}

/** Calls `act` once a temp file in `dir` holds `bytes`; the returned function stops watching. */
function whenWriting(dir: string, bytes: number, act: () => void): () => void {
  const poll = setInterval(() => {
    if (tempFileIn(dir, bytes) === undefined) return;
    clearInterval(poll);
    act();
  }, 2);
  return () => clearInterval(poll);
}

/**
 * Runs `kquant <args>` on a pseudo-terminal in `dir` and, once a temp file there holds 4 MiB,
 * interrupts it with `how`: "ctrl-c" types ^C on the terminal, "SIGTERM" signals the process.
 */
function interruptedRun(dir: string, args: string, how: "ctrl-c" | "SIGTERM"): Promise<TerminalRun> {
  return terminalRun(cli, dir, args, how, () => tempFileIn(dir, 4 * MiB) !== undefined);
}

/** What every interrupted run must show: exit code, an empty output folder, the cursor back last. */
function expectCleanStop(run: TerminalRun, dir: string, signal: string, code: number, bar: boolean): void {
  expect(run.code).toBe(code);
  expect(readdirSync(dir)).toEqual([]);
  const stopped = `kquant: stopped by ${signal}; removed 1 unfinished file(s), nothing was left\r\n`;
  if (!bar) {
    // No bar (dequantize draws none): the cursor was never hidden, and the line is the last thing.
    expect(run.screen.endsWith(stopped)).toBe(true);
    expect(run.screen).not.toContain(HIDE_CURSOR);
    return;
  }
  // The bar was drawn (it hid the cursor), then the line saying what happened, then the cursor came back, last.
  const hidden = run.screen.indexOf(HIDE_CURSOR);
  expect(hidden).toBeGreaterThan(-1);
  expect(run.screen.slice(hidden).endsWith(`${stopped}${SHOW_CURSOR}`)).toBe(true);
  expect(run.screen.lastIndexOf(SHOW_CURSOR)).toBeGreaterThan(run.screen.lastIndexOf(HIDE_CURSOR));
}

describe("an interrupted run", () => {
  for (const [how, signal, code] of [
    ["ctrl-c", "SIGINT", 130],
    ["SIGTERM", "SIGTERM", 143],
  ] as const) {
    it(`quantize, ${how}: exits ${code}, leaves nothing, shows the cursor last, keeps the input`, async () => {
      const dir = mkdtempSync(join(root, "out-"));
      const run = await interruptedRun(dir, `quantize "${input}" --int8 -o model.int8.safetensors`, how);
      expectCleanStop(run, dir, signal, code, true);
      expect(fileHash(input)).toBe(inputHash);
    });
  }

  it("dequantize, ctrl-c: exits 130, leaves nothing, keeps the input", async () => {
    const quantized = join(root, "model.int8.safetensors");
    if (!existsSync(quantized)) execFileSync(process.execPath, [cli, "quantize", input, "--int8", "-o", quantized, "-q"]);
    const before = fileHash(quantized);
    const dir = mkdtempSync(join(root, "out-"));
    const run = await interruptedRun(dir, `dequantize "${quantized}" -o model.f32.safetensors`, "ctrl-c");
    expectCleanStop(run, dir, "SIGINT", 130, false);
    expect(fileHash(quantized)).toBe(before);
  });
});

interface PlainRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args` (stdout and stderr piped) and calls `disturb` once a temp file exists in `watch`. */
function disturbedRun(args: string[], watch: string, disturb: () => void): Promise<PlainRun> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const stopWatching = whenWriting(watch, 0, disturb);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      stopWatching();
      resolve({ code, stdout, stderr });
    });
  });
}

describe("a fault during a quantize is one line, exit 74, nothing left behind", () => {
  it("a disk that fills up while the output is written (a real tmpfs)", async () => {
    const disk = mountTmpfs("40m");
    try {
      const output = join(disk.dir, "model.int8.safetensors");
      const run = await disturbedRun(["quantize", input, "--int8", "-o", output], disk.dir, () => fillDisk(join(disk.dir, "other-program.bin")));
      expect(run.stderr).toMatch(
        new RegExp(`^kquant: ${output}: not enough disk space in ${disk.dir}: the disk filled up while writing it, which needs 32\\.1 MiB, \\d+(\\.\\d+)? (B|KiB|MiB) free\\n$`),
      );
      expect(run.code).toBe(74);
      expect(readdirSync(disk.dir)).toEqual(["other-program.bin"]);
      expect(fileHash(input)).toBe(inputHash);
    } finally {
      disk.unmount();
    }
  });

  it("an output folder removed while the output is written", async () => {
    const folder = mkdtempSync(join(root, "vanishing-"));
    const output = join(folder, "model.int8.safetensors");
    const run = await disturbedRun(["quantize", input, "--int8", "-o", output], folder, () => rmSync(folder, { recursive: true, force: true }));
    expect(run.stderr).toBe(`kquant: ${output}: the output folder ${folder} was removed while kquant wrote into it\n`);
    expect(run.code).toBe(74);
    expect(statSync(folder, { throwIfNoEntry: false })).toBeUndefined();
    expect(fileHash(input)).toBe(inputHash);
  });

  it("a source truncated while it is read", async () => {
    const source = join(root, "shrinking.safetensors");
    copyFileSync(input, source);
    const folder = mkdtempSync(join(root, "out-"));
    const run = await disturbedRun(["quantize", source, "--int8", "-o", join(folder, "out.safetensors")], folder, () => truncateSync(source, 8 * MiB));
    expect(run.stderr).toMatch(
      new RegExp(`^kquant: ${source}: tensor "layer\\.\\d\\.weight": the file was truncated while kquant read it \\(it is now ${8 * MiB} bytes, the data runs to byte \\d+\\)\\n$`),
    );
    expect(run.code).toBe(74);
    expect(readdirSync(folder)).toEqual([]);
  });
});
