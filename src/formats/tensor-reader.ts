/** The TensorReader every format returns: a name index over tensors that each know how to fill a buffer. */
import { KquantError } from "../errors.js";
import { outputBuffer } from "./io.js";
import type { TensorInfo, TensorReader } from "./types.js";

export interface TensorSource {
  info: TensorInfo;
  /** Fills `out` (exactly `info.byteLength` long) with little-endian C-order bytes. */
  fill(out: Uint8Array): Promise<void>;
  /** Fills `out` with the bytes from `byteOffset` on, where the file holds them as they are. */
  fillRange?(out: Uint8Array, byteOffset: number): Promise<void>;
}

export function makeTensorReader(
  path: string,
  sources: readonly TensorSource[],
  metadata: Readonly<Record<string, string>> | null,
  closeAll: () => Promise<void>,
): TensorReader {
  const byName = new Map<string, TensorSource>();
  for (const source of sources) byName.set(source.info.name, source);
  let closed: Promise<void> | null = null;
  const sourceOf = (name: string): TensorSource => {
    if (closed !== null) throw new KquantError({ file: path, tensor: name, what: "reader is already closed" });
    const source = byName.get(name);
    if (source === undefined) throw new KquantError({ file: path, tensor: name, what: "no such tensor" });
    return source;
  };
  return {
    path,
    tensors: sources.map((s) => s.info),
    metadata,
    async read(name: string, into?: Uint8Array): Promise<Uint8Array> {
      const source = sourceOf(name);
      const { byteLength, file } = source.info;
      const out = outputBuffer(into, byteLength, file, name);
      await source.fill(out);
      return out;
    },
    async *readProgressively(name: string, into: Uint8Array, partBytes: number): AsyncIterable<number> {
      const source = sourceOf(name);
      const out = outputBuffer(into, source.info.byteLength, source.info.file, name);
      if (source.fillRange === undefined) {
        await source.fill(out);
        yield out.length;
        return;
      }
      // One part is always in flight: the next read runs while the caller works on the last part.
      const step = Math.max(1, partBytes);
      const readPart = (at: number): Promise<number> => {
        const end = Math.min(out.length, at + step);
        return source.fillRange!(out.subarray(at, end), at).then(() => end);
      };
      let next: Promise<number> | null = out.length > 0 ? readPart(0) : null;
      try {
        while (next !== null) {
          const end = await next;
          next = end < out.length ? readPart(end) : null;
          yield end;
        }
      } finally {
        // Stopped early (an error, or a caller that quit): leave no read running into `out`.
        await next?.catch(() => undefined);
      }
      if (out.length === 0) yield 0;
    },
    rangeReader(name: string): ((into: Uint8Array, byteOffset: number) => Promise<void>) | null {
      const source = sourceOf(name);
      const fillRange = source.fillRange;
      if (fillRange === undefined) return null;
      const { byteLength, file } = source.info;
      return async (into, byteOffset) => {
        if (byteOffset < 0 || byteOffset + into.length > byteLength) {
          throw new KquantError({ file, tensor: name, what: `bytes ${byteOffset}-${byteOffset + into.length} are outside its ${byteLength}` });
        }
        sourceOf(name); // not once the reader is closed
        await fillRange(into, byteOffset);
      };
    },
    close(): Promise<void> {
      closed ??= closeAll();
      return closed;
    },
  };
}
