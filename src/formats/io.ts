/**
 * Positional reads and writes that loop until done, in chunks a single fs call accepts; opening
 * regular files only; errno codes as one-line errors.
 */
import { constants as bufferConstants } from "node:buffer";
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { EXIT_IO_FAULT, KquantError } from "../errors.js";

/** fs calls take at most 2 GiB - 1 bytes; stay well below so a 4 GiB tensor is four calls. */
const MAX_IO = 1 << 30;

/**
 * Fills `into` from `position`. Callers check the file's size when they open it, so a short read
 * means the file shrank since: reported as such, naming `file` and `what`.
 */
export async function readFully(fh: FileHandle, into: Uint8Array, position: number, file: string, what: string): Promise<Uint8Array> {
  let done = 0;
  while (done < into.length) {
    const want = Math.min(MAX_IO, into.length - done);
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(into, done, want, position + done));
    } catch (err) {
      throw asUserError(err, `${file}: ${what}`);
    }
    if (bytesRead === 0) {
      const size = await fh.stat().then((s) => `${s.size} bytes`, () => "shorter");
      throw new KquantError({
        file,
        what: `${what}: the file was truncated while kquant read it (it is now ${size}, the data runs to byte ${position + into.length})`,
        exitCode: EXIT_IO_FAULT,
      });
    }
    done += bytesRead;
  }
  return into;
}

export async function writeFully(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const want = Math.min(MAX_IO, bytes.length - done);
    const { bytesWritten } = await fh.write(bytes, done, want, position + done);
    done += bytesWritten;
  }
}

/**
 * A new buffer of `byteLength` bytes for tensor `name` of `file` (shared with worker threads when
 * `shared`), or one line naming the tensor when it is more than one buffer can hold or more than
 * the machine will allocate (a header may claim a 100 GiB tensor).
 */
export function tensorBuffer(byteLength: number, file: string, name: string, shared: true): SharedArrayBuffer;
export function tensorBuffer(byteLength: number, file: string, name: string, shared?: false): Uint8Array;
export function tensorBuffer(byteLength: number, file: string, name: string, shared = false): Uint8Array | SharedArrayBuffer {
  // (A SharedArrayBuffer may be larger than a Uint8Array of its own: the workers view it in parts.)
  if (!shared && byteLength > bufferConstants.MAX_LENGTH) {
    throw new KquantError({ file, tensor: name, what: `${byteLength} bytes is more than one buffer can hold (${bufferConstants.MAX_LENGTH} bytes)` });
  }
  try {
    return shared ? new SharedArrayBuffer(byteLength) : new Uint8Array(byteLength);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new KquantError({ ...(file !== "" ? { file } : {}), ...(name !== "" ? { tensor: name } : {}), what: `${byteLength} bytes: more memory than this machine would allocate for one tensor` });
  }
}

/** A fresh buffer for a tensor, or `into` after checking its length. */
export function outputBuffer(into: Uint8Array | undefined, byteLength: number, file: string, name: string): Uint8Array {
  if (into === undefined) return tensorBuffer(byteLength, file, name);
  if (into.length !== byteLength) {
    throw new KquantError({ file, tensor: name, what: `destination buffer is ${into.length} bytes, tensor is ${byteLength}` });
  }
  return into;
}

/** errno codes that mean the path or its permissions are wrong: bad usage, exit 2. */
const USAGE_ERRORS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "is a directory",
  ENOTDIR: "a parent is not a directory",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
};

/** errno codes that mean the machine failed kquant: exit EXIT_IO_FAULT. */
const FAULTS: Record<string, string> = {
  EIO: "input/output error (a failing disk, or a network share that went away?)",
  ESTALE: "stale file handle (a network share that went away?)",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
};

/** Turns "file not found", a read error and friends into one-line user errors; anything else is rethrown. */
export function asUserError(err: unknown, file: string): unknown {
  const code = errnoOf(err);
  if (code === undefined) return err;
  if (USAGE_ERRORS[code] !== undefined) return new KquantError({ file, what: USAGE_ERRORS[code] });
  if (FAULTS[code] !== undefined) return new KquantError({ file, what: FAULTS[code], exitCode: EXIT_IO_FAULT });
  return err;
}

/** The errno code of `err`, if it has one. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * Opens `path` for reading if it is a regular file (following links), else throws one line naming
 * it. The open does not block: a FIFO or a device in a model folder would otherwise hold it forever.
 */
export async function openRegular(path: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    // (The page's file system, web/vfs.ts, has no FIFOs and no O_ flags: a plain read open there.)
    fh = await open(path, typeof constants.O_NONBLOCK === "number" ? constants.O_RDONLY | constants.O_NONBLOCK : "r");
  } catch (err) {
    throw asUserError(err, path);
  }
  const st = await fh.stat().catch(async (err: unknown) => {
    await fh.close().catch(() => undefined);
    throw asUserError(err, path);
  });
  if (!st.isFile()) {
    await fh.close().catch(() => undefined);
    throw new KquantError({ file: path, what: st.isDirectory() ? "is a directory" : "not a regular file (a FIFO, socket or device is never read)" });
  }
  return fh;
}

/** The bytes of the regular file `path` (see openRegular); one line when it is larger than `maxBytes`. */
export async function readRegularFile(path: string, maxBytes = 1 << 30): Promise<Buffer> {
  const fh = await openRegular(path);
  try {
    const { size } = await fh.stat();
    if (size > maxBytes) throw new KquantError({ file: path, what: `is ${size} bytes, more than the ${maxBytes} kquant reads of such a file` });
    return Buffer.from(await readFully(fh, new Uint8Array(size), 0, path, "the file"));
  } finally {
    await fh.close().catch(() => undefined);
  }
}
