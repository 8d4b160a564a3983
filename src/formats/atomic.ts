/**
 * Writes that never leave a half-written file under the target's name: data goes to a temporary
 * file in the same folder (so the rename cannot cross file systems), then is renamed into place.
 * Temp files and renamed outputs are registered in live-files.ts while they are being written, so
 * an interrupt removes them too; a write whose size is known checks the free space first.
 */
import { randomBytes } from "node:crypto";
import { link, open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { EXIT_IO_FAULT, KquantError } from "../errors.js";
import { formatBytes } from "../units.js";
import { diskFullError, ensureFreeSpace, freeBytes } from "./disk-space.js";
import { asUserError, errnoOf, writeFully } from "./io.js";
import { forgetOutput, isClaimedNew, noteOutput, trackTemp, untrackTemp } from "./live-files.js";

export interface WriteOptions {
  /**
   * Also flush the file and its folder entry to disk before returning, so a finished output
   * survives a power cut or kernel crash. Off by default, as for cp, numpy and safetensors: the
   * rename alone already guarantees that a failed or killed run leaves no half-written file, and
   * the flush costs ~20% of a quantize run (bench/results.md).
   */
  fsync?: boolean;
}

/** `<dir>/.<name>.<pid>.<random>.tmp`: hidden, unique per process and call, matched by `*.tmp` ignores. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

/** The target a temp path of tempPathFor names (`<dir>/.<name>.<pid>.<hex>.tmp` → `<dir>/<name>`), or undefined for any other path. */
export function targetOfTempPath(path: string): string | undefined {
  const m = /^\.(.+)\.\d+\.[0-9a-f]{12}\.tmp$/.exec(basename(path));
  return m === null ? undefined : join(dirname(path), m[1]!);
}

/**
 * A new temp file next to `target`, opened exclusively for writing. With `finalBytes` (the size
 * the finished file will have), a folder without room for it is refused before anything is created.
 */
export async function openTemp(target: string, finalBytes = 0): Promise<{ fh: FileHandle; tempPath: string }> {
  if (finalBytes > 0) await ensureFreeSpace(target, finalBytes);
  const tempPath = tempPathFor(target);
  // Registered before it exists: an interrupt while the open is in flight still removes it.
  trackTemp(tempPath, finalBytes);
  try {
    return { fh: await open(tempPath, "wx"), tempPath };
  } catch (err) {
    untrackTemp(tempPath);
    throw await writeError(err, target, finalBytes, false);
  }
}

/** Closes `fh` (syncing it first with `fsync`), then renames the temp file over `target`. Removes the temp file on failure. */
export async function commitTemp(fh: FileHandle, tempPath: string, target: string, opts: WriteOptions = {}): Promise<void> {
  try {
    if (opts.fsync) await fh.sync();
    await fh.close();
    noteOutput(target);
    if (isClaimedNew(target)) await linkNew(tempPath, target);
    else await rename(tempPath, target);
    untrackTemp(tempPath);
  } catch (err) {
    forgetOutput(target);
    const size = await stat(tempPath).then((s) => s.size, () => 0);
    await discardTemp(fh, tempPath);
    throw await writeError(err, target, size);
  }
  if (opts.fsync) await syncFolder(dirname(target));
}

/**
 * Gives the finished temp file the name `target` only if nothing has that name (a hard link fails
 * when it exists, atomically), then drops the temp name; where links are not supported, an
 * exclusive-create check, then the rename.
 */
async function linkNew(tempPath: string, target: string): Promise<void> {
  try {
    await link(tempPath, target);
  } catch (err) {
    const code = errnoOf(err);
    if (code === "EEXIST") throw new KquantError({ file: target, what: "output already exists (another run wrote it meanwhile)", hint: "use --force to overwrite it" });
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "EXDEV" && code !== "EMLINK") throw err;
    if (await stat(target).then(() => true, () => false)) throw new KquantError({ file: target, what: "output already exists (another run wrote it meanwhile)", hint: "use --force to overwrite it" });
    await rename(tempPath, target);
    return;
  }
  await rm(tempPath, { force: true });
}

/** Closes `fh` (if still open) and deletes the temp file; never throws, as it runs on error paths. */
export async function discardTemp(fh: FileHandle, tempPath: string): Promise<void> {
  await fh.close().catch(() => undefined);
  await removeQuietly(tempPath);
  untrackTemp(tempPath);
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => undefined);
}

/**
 * A failed write to `target` (`needed` bytes when finished) as one line, once its temp file is
 * gone: a full disk says what was needed and what is free; a folder or temp file removed under
 * kquant says so (`wrote`: its temp file had been created); other errno codes as for reads
 * (io.ts); anything else is returned as it is.
 */
export async function writeError(err: unknown, target: string, needed: number, wrote = true): Promise<unknown> {
  if (err instanceof KquantError) return err;
  const code = errnoOf(err);
  const folder = dirname(target);
  if (code === "ENOSPC" || code === "EDQUOT") {
    const what = code === "EDQUOT" ? "over the disk quota: " : "";
    return diskFullError(target, `${what}the disk filled up while writing it${needed > 0 ? `, which needs ${formatBytes(needed)}` : ""}`, await freeBytes(folder));
  }
  if (code === "ENOENT") {
    const folderThere = await stat(folder).then((s) => s.isDirectory(), () => false);
    const what = folderThere
      ? "its temporary file was removed while kquant wrote it"
      : `the output folder ${folder} ${wrote ? "was removed while kquant wrote into it" : "does not exist"}`;
    return new KquantError(`${target}: ${what}`, EXIT_IO_FAULT);
  }
  return asUserError(err, target);
}

/** Makes the rename durable where the platform allows syncing a directory (not Windows). */
async function syncFolder(folder: string): Promise<void> {
  let dir: FileHandle | undefined;
  try {
    dir = await open(folder, "r");
    await dir.sync();
  } catch {
    // Best effort: the data itself is already synced.
  } finally {
    await dir?.close().catch(() => undefined);
  }
}

/** Writes `chunks` back to back to `target` atomically, without concatenating them in memory. */
export async function writeChunksAtomic(target: string, chunks: readonly Uint8Array[], opts: WriteOptions = {}): Promise<void> {
  const size = chunks.reduce((n, c) => n + c.length, 0);
  const { fh, tempPath } = await openTemp(target, size);
  try {
    let position = 0;
    for (const chunk of chunks) {
      await writeFully(fh, chunk, position);
      position += chunk.length;
    }
  } catch (err) {
    await discardTemp(fh, tempPath);
    throw await writeError(err, target, size);
  }
  await commitTemp(fh, tempPath, target, opts);
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: WriteOptions = {}): Promise<void> {
  await writeChunksAtomic(path, [typeof data === "string" ? new TextEncoder().encode(data) : data], opts);
}
