/**
 * A real small file system that fills up: a tmpfs mounted for the test (needs root, or
 * CAP_SYS_ADMIN, as in the CI container), and a file that takes all of its free space.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Tmpfs {
  dir: string;
  unmount(): void;
}

/** A fresh tmpfs of `size` (mount's syntax: "2m") on a new folder. */
export function mountTmpfs(size: string): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), "kquant-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`these tests mount a small tmpfs, which needs root (or CAP_SYS_ADMIN): ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
  }
  return {
    dir,
    unmount() {
      execFileSync("umount", [dir], { stdio: "pipe" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes `path` until the disk is full (ENOSPC): afterwards nothing more fits beside it. */
export function fillDisk(path: string): number {
  const chunk = new Uint8Array(64 * 1024).fill(1);
  const fd = openSync(path, "w");
  let written = 0;
  try {
    for (;;) written += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
  return written;
}
