/** The TensorReader every format returns: a name index over tensors that each know how to fill a buffer. */
import { constants as bufferConstants } from "node:buffer";
import { KquantError } from "../errors.js";
import { outputBuffer } from "./io.js";
import type { TensorInfo, TensorReader } from "./types.js";

export interface TensorSource {
  info: TensorInfo;
  /** Fills `out` (exactly `info.byteLength` long) with little-endian C-order bytes. */
  fill(out: Uint8Array): Promise<void>;
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
  return {
    path,
    tensors: sources.map((s) => s.info),
    metadata,
    async read(name: string, into?: Uint8Array): Promise<Uint8Array> {
      if (closed !== null) throw new KquantError(`${path}: tensor "${name}": reader is already closed`);
      const source = byName.get(name);
      if (source === undefined) throw new KquantError(`${path}: tensor "${name}": no such tensor`);
      const { byteLength, file } = source.info;
      if (into === undefined && byteLength > bufferConstants.MAX_LENGTH) {
        throw new KquantError(
          `${file}: tensor "${name}": ${byteLength} bytes is more than one buffer can hold (${bufferConstants.MAX_LENGTH} bytes)`,
        );
      }
      const out = outputBuffer(into, byteLength, file, name);
      await source.fill(out);
      return out;
    },
    close(): Promise<void> {
      closed ??= closeAll();
      return closed;
    },
  };
}
