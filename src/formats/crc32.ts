/** Incremental CRC-32 (zip's), to check npz members: yauzl checks sizes but not checksums. */
import * as zlib from "node:zlib";

type Crc32 = (data: Uint8Array, value?: number) => number;

let table: Uint32Array | null = null;

function crc32Fallback(data: Uint8Array, value = 0): number {
  if (table === null) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = ~value >>> 0;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** zlib.crc32 arrived in Node 20.15; older 20.x use the table version. */
export const crc32: Crc32 = typeof (zlib as { crc32?: Crc32 }).crc32 === "function" ? (zlib as unknown as { crc32: Crc32 }).crc32 : crc32Fallback;

export { crc32Fallback };
