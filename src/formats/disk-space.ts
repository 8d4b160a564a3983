/**
 * Free space, checked before a write whose size is known, and the one-line message for a full
 * disk, whether found up front or when a write fails with ENOSPC.
 */
import { statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { EXIT_IO_FAULT, KquantError } from "../errors.js";
import { formatBytes } from "../units.js";
import { pendingBytesIn } from "./live-files.js";

/**
 * Bytes this process may still write in `folder`'s file system, or null where statfs cannot tell.
 * Root may use the blocks ext4 reserves for it, so it gets the free count, others the available one.
 */
export async function freeBytes(folder: string): Promise<number | null> {
  try {
    const s = await statfs(folder);
    const blocks = process.getuid?.() === 0 ? s.bfree : s.bavail;
    return blocks * s.bsize;
  } catch {
    return null;
  }
}

/** The full-disk error: what was needed and what is free. */
export function diskFullError(target: string, needed: string, free: number | null): KquantError {
  const have = free === null ? "" : `, ${formatBytes(free)} free`;
  return new KquantError(`${target}: not enough disk space in ${dirname(target)}: ${needed}${have}`, EXIT_IO_FAULT);
}

/**
 * Refuses up front to start writing `target` (`bytes` long) into a folder without room for it
 * and for the files this process is already writing there (a sharded output's other shards).
 */
export async function ensureFreeSpace(target: string, bytes: number): Promise<void> {
  const folder = dirname(target);
  const free = await freeBytes(folder);
  if (free === null) return;
  const others = pendingBytesIn(folder);
  const needed = bytes + others.bytes;
  if (needed <= free) return;
  const with_ = others.files > 0 ? ` with the ${others.files} other file(s) being written` : "";
  throw diskFullError(target, `needs ${formatBytes(needed)}${with_}`, free);
}
