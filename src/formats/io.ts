/** Positional reads and writes that loop until done, in chunks a single fs call accepts. */
import type { FileHandle } from "node:fs/promises";
import { KquantError } from "../errors.js";

/** fs calls take at most 2 GiB - 1 bytes; stay well below so a 4 GiB tensor is four calls. */
const MAX_IO = 1 << 30;

/** Fills `into` from `position`; a short file is an error naming `file` and `what`. */
export async function readFully(fh: FileHandle, into: Uint8Array, position: number, file: string, what: string): Promise<Uint8Array> {
  let done = 0;
  while (done < into.length) {
    const want = Math.min(MAX_IO, into.length - done);
    const { bytesRead } = await fh.read(into, done, want, position + done);
    if (bytesRead === 0) {
      throw new KquantError({ file, what: `${what}: file ended early (read ${done} of ${into.length} bytes at offset ${position})` });
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

/** A fresh buffer for a tensor, or `into` after checking its length. */
export function outputBuffer(into: Uint8Array | undefined, byteLength: number, file: string, name: string): Uint8Array {
  if (into === undefined) return new Uint8Array(byteLength);
  if (into.length !== byteLength) {
    throw new KquantError({ file, tensor: name, what: `destination buffer is ${into.length} bytes, tensor is ${byteLength}` });
  }
  return into;
}

/** Turns "file not found" and friends into one-line user errors; anything else is rethrown. */
export function asUserError(err: unknown, file: string): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const known: Record<string, string> = {
    ENOENT: "no such file",
    EACCES: "permission denied",
    EISDIR: "is a directory",
    ENOTDIR: "a parent is not a directory",
    EPERM: "operation not permitted",
  };
  if (typeof code === "string" && known[code] !== undefined) return new KquantError({ file, what: `${known[code]}` });
  return err;
}
