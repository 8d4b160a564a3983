/**
 * Writes that never leave a half-written file under the target's name: data goes to a temporary
 * file in the same folder (so the rename cannot cross file systems), then is renamed into place.
 */
import { randomBytes } from "node:crypto";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { asUserError, writeFully } from "./io.js";

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

/** A new temp file next to `target`, opened exclusively for writing. */
export async function openTemp(target: string): Promise<{ fh: FileHandle; tempPath: string }> {
  const tempPath = tempPathFor(target);
  try {
    return { fh: await open(tempPath, "wx"), tempPath };
  } catch (err) {
    throw asUserError(err, target);
  }
}

/** Closes `fh` (syncing it first with `fsync`), then renames the temp file over `target`. Removes the temp file on failure. */
export async function commitTemp(fh: FileHandle, tempPath: string, target: string, opts: WriteOptions = {}): Promise<void> {
  try {
    if (opts.fsync) await fh.sync();
    await fh.close();
    await rename(tempPath, target);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await removeQuietly(tempPath);
    throw asUserError(err, target);
  }
  if (opts.fsync) await syncFolder(dirname(target));
}

/** Closes `fh` (if still open) and deletes the temp file; never throws, as it runs on error paths. */
export async function discardTemp(fh: FileHandle, tempPath: string): Promise<void> {
  await fh.close().catch(() => undefined);
  await removeQuietly(tempPath);
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => undefined);
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
  const { fh, tempPath } = await openTemp(target);
  try {
    let position = 0;
    for (const chunk of chunks) {
      await writeFully(fh, chunk, position);
      position += chunk.length;
    }
  } catch (err) {
    await discardTemp(fh, tempPath);
    throw asUserError(err, target);
  }
  await commitTemp(fh, tempPath, target, opts);
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: WriteOptions = {}): Promise<void> {
  await writeChunksAtomic(path, [typeof data === "string" ? new TextEncoder().encode(data) : data], opts);
}
