/**
 * What every hostile-use test needs: the CLI built as `npm run build` builds it (the split bundles
 * of dist/, written to a folder of the test's own), a run of it with a time limit (a hang fails the
 * test), and snapshots of the folders around a run (every entry, each file's hash), so a test can
 * say exactly what a run may change: nothing outside its output, the input never.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
// @ts-expect-error: a build script without type declarations
import { bundleCli } from "../../scripts/bundle.mjs";
import { REPO } from "../dist/demo-workflow.js";
import { userEnv } from "../dist/run.js";

export interface Built {
  /** The CLI bundle (kquant.cjs), beside its split pipeline, errors and worker bundles. */
  cli: string;
  /** Nothing to do for a shared build (kept in node_modules/.cache for the next file and run). */
  remove(): void;
}

/**
 * The npm package's CLI built from the current sources, into a folder under the repository's
 * node_modules/.cache (so that its external dependencies resolve as from dist/), named by a hash of
 * the sources: the suite's files share one build, made by whichever needs it first (built aside,
 * then renamed into place, so a concurrent file sees it whole or not at all).
 */
export async function buildCli(): Promise<Built> {
  const base = join(REPO, "node_modules", ".cache");
  mkdirSync(base, { recursive: true });
  const dir = join(base, `kquant-hostile-${sourcesKey()}`);
  const cli = join(dir, "kquant.cjs");
  if (!existsSync(cli)) {
    const aside = mkdtempSync(join(base, "kquant-hostile-build-"));
    await bundleCli(join(aside, "kquant.cjs"));
    try {
      renameSync(aside, dir);
    } catch {
      rmSync(aside, { recursive: true, force: true }); // another file's build got there first
    }
  }
  return { cli, remove: () => undefined };
}

/** A hash of every source file's path, size and mtime (src/, scripts/, package.json). */
function sourcesKey(): string {
  const hash = createHash("sha256");
  const stack = [join(REPO, "src"), join(REPO, "scripts"), join(REPO, "package.json")];
  while (stack.length > 0) {
    const path = stack.pop()!;
    const st = statSync(path);
    if (st.isDirectory()) for (const name of readdirSync(path).sort()) stack.push(join(path, name));
    else hash.update(`${path}:${st.size}:${st.mtimeMs}\n`);
  }
  return hash.digest("hex").slice(0, 16);
}

/**
 * Builds the CLI before the file's tests (buildCli) and removes it after; returns what gives the
 * build, for kquant(...). `setup` runs once the CLI exists (to make inputs with it).
 */
export function builtCli(setup?: (built: Built) => Promise<void> | void): () => Built {
  let built: Built | undefined;
  beforeAll(async () => {
    built = await buildCli();
    await setup?.(built);
  }, 180_000);
  afterAll(() => built?.remove());
  return () => built!;
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The run passed its time limit and was killed. */
  hung: boolean;
}

/** Runs the built CLI with `args` in `cwd`, killed (and reported hung) after `limitMs`. */
export function kquant(built: Built, args: readonly string[], opts: { cwd: string; limitMs?: number; stdin?: string }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [built.cli, ...args], { cwd: opts.cwd, env: userEnv({ NO_COLOR: "1" }), stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill("SIGKILL");
    }, opts.limitMs ?? 20_000);
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.stdin.end(opts.stdin ?? "");
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, hung });
    });
  });
}

/** What a careless or hostile run may end with: in time, 0, 1 or 2, no stack trace, a failure as one line. */
export function expectOrderly(r: Run, what: string): void {
  expect(r.hung, `${what}: hung`).toBe(false);
  expect(r.stderr, `${what}: a stack trace`).not.toMatch(/\n\s+at .+[:(]/);
  expect(r.stderr, `${what}: internal error`).not.toMatch(/internal error/);
  expect([0, 1, 2], `${what}: exit ${r.code} (${r.stderr})`).toContain(r.code);
  if (r.code === 2) expect(r.stderr.trimEnd().split("\n"), `${what}: one line`).toHaveLength(1);
}

/** Files up to this size are hashed; larger ones (a sparse 100 GiB input) are known by size, mtime and inode. */
const HASHED_UP_TO = 512 * 1024 * 1024;

/** Every entry under `root` (not following links): a file's hash, a link's target, or "dir". */
export function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = lstatSync(path);
      const key = relative(root, path);
      if (st.isDirectory()) {
        out.set(key, "dir");
        stack.push(path);
      } else if (st.isSymbolicLink()) out.set(key, `link:${readlinkSync(path)}`);
      else if (st.isFile() && st.size > HASHED_UP_TO) out.set(key, `large:${st.size}:${st.mtimeMs}:${st.ino}`);
      else if (st.isFile()) out.set(key, createHash("sha256").update(readFileSync(path)).digest("hex"));
      else out.set(key, `special:${st.mode}`);
    }
  }
  return out;
}

/** The entries of `after` that differ from `before` (added, removed or changed), sorted. */
export function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((k) => before.get(k) !== after.get(k)).sort();
}

/** A fresh folder for one case, under the OS's temp folder. */
export function caseDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `kquant-hostile-${name}-`));
}
