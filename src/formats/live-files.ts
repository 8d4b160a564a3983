/**
 * The one process-wide registry of files this process is part-way through writing, so that an
 * interrupt (src/cli/signals.ts) or a fault can remove them synchronously and leave nothing behind:
 *
 * - temp files (atomic.ts), from just before they are created until renamed or deleted, with the
 *   size they will have when done (the free-space check counts what they still need);
 * - while a command holds an `OutputScope`, the outputs it has renamed into place: a run writes
 *   several files (shards, then the index, then the manifest), and one stopped half way must not
 *   leave the first ones behind looking finished.
 *
 * - a folder run's staging folder (a temp whose removal takes its contents), and the output folder
 *   once the staging folder is renamed to it.
 *
 * Only paths are kept: removing them needs no open handle (on POSIX an open file can be unlinked,
 * and writes still in flight then land in a file that no longer has a name).
 */
import { rmdirSync, rmSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { asUserError } from "./io.js";
import { dirname, resolve } from "node:path";

/** Outputs that must be new: created only if nothing has the name yet (no --force), see claimNew. */
const mustBeNew = new Set<string>();

/**
 * `paths` are outputs found free (no --force; `mustBe` false: --force, they may be replaced): each is to be created only if its name is still free
 * when the run gets there, so that of two runs writing one new output the second is refused
 * instead of replacing the first (atomic.ts links the finished temp file to the name).
 */
export function claimNew(paths: readonly string[], mustBe = true): void {
  for (const p of paths) {
    if (mustBe) mustBeNew.add(resolve(p));
    else mustBeNew.delete(resolve(p));
  }
}

/** Must `path` be created new (see claimNew)? */
export function isClaimedNew(path: string): boolean {
  return mustBeNew.has(resolve(path));
}

/** Live temp files → the byte size each will have when finished. */
const temps = new Map<string, number>();
let scope: Set<string> | null = null;
/** Folders the current command created for its outputs, in the order created (parents first). */
let scopeFolders: string[] | null = null;

/** Registers the temp file `path`, which will be `finalBytes` long when finished (0: not known). */
export function trackTemp(path: string, finalBytes: number): void {
  temps.set(path, finalBytes);
}

/** `path` was renamed into place or deleted: no longer this registry's to remove. */
export function untrackTemp(path: string): void {
  temps.delete(path);
}

/** Bytes the live temp files in `folder` will still take when finished (their planned sizes). */
export function pendingBytesIn(folder: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const [path, size] of temps) {
    if (resolve(dirname(path)) !== resolve(folder)) continue;
    bytes += size;
    files++;
  }
  return { bytes, files };
}

/**
 * Notes that `target` is about to receive (or has received) a finished output. Called before
 * the rename, so an interrupt while the rename is in flight still removes it.
 */
export function noteOutput(target: string): void {
  scope?.add(target);
}

/** The rename into `target` failed: whatever is there is not this run's. */
export function forgetOutput(target: string): void {
  scope?.delete(target);
}

export interface OutputScope {
  /** The command finished: its outputs stay. */
  keep(): void;
  /** The command failed or was stopped: removes its outputs and every live temp file; returns the paths removed. */
  removeSync(): string[];
}

/** Starts collecting the outputs a command writes (one command at a time per process). */
export function beginOutputs(): OutputScope {
  const mine = new Set<string>();
  const folders: string[] = [];
  scope = mine;
  scopeFolders = folders;
  const end = () => {
    if (scope === mine) scope = null;
    if (scopeFolders === folders) scopeFolders = null;
  };
  return {
    keep() {
      end();
      mine.clear();
      mustBeNew.clear();
    },
    removeSync() {
      end();
      mustBeNew.clear();
      const removed = removeSync([...temps.keys(), ...mine]);
      // Then the folders made for them, deepest first, each only if nothing else is in it.
      for (const dir of folders.reverse()) {
        try {
          rmdirSync(dir);
          removed.push(dir);
        } catch {
          // Not empty (something not ours is in it) or already gone: it stays.
        }
      }
      return removed;
    },
  };
}

/**
 * Creates the missing parent folders of an output path (as `mkdir -p` and mlx_lm.convert do) and
 * notes each one, so that a command that fails or is stopped removes them again (when empty).
 */
export async function makeParentFolders(path: string): Promise<void> {
  const parent = dirname(resolve(path));
  let first: string | undefined;
  try {
    first = await mkdir(parent, { recursive: true });
  } catch (err) {
    throw asUserError(err, parent);
  }
  if (first === undefined) return;
  const made: string[] = [];
  for (let dir = parent; ; dir = dirname(dir)) {
    made.unshift(dir);
    if (dir === resolve(first) || dirname(dir) === dir) break;
  }
  scopeFolders?.push(...made);
}

/** Removes every live temp file (not finished outputs); returns the paths removed. */
export function removeLiveTempsSync(): string[] {
  return removeSync([...temps.keys()]);
}

function removeSync(paths: readonly string[]): string[] {
  const removed: string[] = [];
  for (const path of paths) {
    try {
      // Recursive for a staging or output folder; every path here is one this process created.
      rmSync(path, { recursive: true });
      removed.push(path);
    } catch {
      // Already gone (renamed, removed by its own error path, or never created).
    }
    temps.delete(path);
  }
  return removed;
}
