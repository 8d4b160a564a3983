/**
 * numpy .npz: a zip of .npy members, read with random access through yauzl (stored and deflated,
 * zip64), each member's header parsed at open so names, dtypes and shapes are known up front.
 * Member data streams straight into the caller's buffer and its CRC-32 is checked.
 */
import { Readable } from "node:stream";
import type yauzl from "yauzl";
import { KquantError } from "../errors.js";
import { commitTemp, discardTemp, openTemp, writeError, type WriteOptions } from "./atomic.js";
import { crc32 } from "./crc32.js";
import { asUserError, openRegular, writeFully } from "./io.js";
import { encodeNpy, needsTranspose, npyDataStart, npyDataToLittleEndianC, NPY_PRELUDE_BYTES, parseNpyHeader, type NpyHeader, type NpyTensor } from "./npy.js";
import { makeTensorReader, type TensorSource } from "./tensor-reader.js";
import type { TensorReader } from "./types.js";

/** The zip libraries load with the first .npz: most runs never touch one, and every start would pay for them. */
async function openZip(path: string): Promise<yauzl.ZipFile> {
  // A FIFO or device is refused before yauzl opens it (its open would block).
  await (await openRegular(path)).close();
  const { default: yauzl } = await import("yauzl");
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: true }, (err, zip) => {
      if (err) reject(err);
      else resolve(zip);
    });
  });
}

function listEntries(zip: yauzl.ZipFile): Promise<yauzl.Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: yauzl.Entry[] = [];
    zip.on("entry", (entry: yauzl.Entry) => {
      entries.push(entry);
      zip.readEntry();
    });
    zip.once("end", () => resolve(entries));
    zip.once("error", reject);
    zip.readEntry();
  });
}

function openMember(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Readable> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err) reject(err);
      else resolve(stream);
    });
  });
}

/** Single-line text of a zip library error. */
const zipMessage = (err: unknown): string => String((err as Error)?.message ?? err).split("\n")[0]!;

/** Reads just the .npy header at the start of a member. */
async function readMemberHeader(path: string, name: string, zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NpyHeader> {
  const stream = await openMember(zip, entry);
  const chunks: Buffer[] = [];
  let have = 0;
  let need = NPY_PRELUDE_BYTES;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      have += chunk.length;
      if (have >= need && need === NPY_PRELUDE_BYTES) need = npyDataStart(path, name, Buffer.concat(chunks));
      if (have >= need) break;
    }
  } finally {
    stream.destroy();
  }
  const bytes = Buffer.concat(chunks);
  if (bytes.length < need) npyDataStart(path, name, bytes); // reports bad magic on tiny members
  if (bytes.length < need) throw new KquantError({ file: path, tensor: name, what: `member ends inside its .npy header (${bytes.length} of ${need} bytes)` });
  return parseNpyHeader(path, name, bytes);
}

export async function openNpz(path: string): Promise<TensorReader> {
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(path);
  } catch (err) {
    const user = asUserError(err, path);
    if (user instanceof KquantError) throw user;
    throw new KquantError({ file: path, what: `not a readable zip archive: ${zipMessage(err)}` });
  }
  const close = async (): Promise<void> => {
    zip.close();
  };
  try {
    let entries: yauzl.Entry[];
    try {
      entries = await listEntries(zip);
    } catch (err) {
      throw new KquantError({ file: path, what: `corrupt zip archive: ${zipMessage(err)}` });
    }
    const sources: TensorSource[] = [];
    const seen = new Set<string>();
    for (const entry of entries) {
      const member = entry.fileName;
      if (!member.endsWith(".npy")) throw new KquantError({ file: path, what: `member "${member}" is not a .npy array` });
      const name = member.slice(0, -".npy".length);
      if (seen.has(name)) throw new KquantError({ file: path, tensor: name, what: `the archive holds two members named "${member}"` });
      seen.add(name);
      if (entry.isEncrypted()) throw new KquantError({ file: path, tensor: name, what: "member is encrypted" });
      if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
        throw new KquantError({ file: path, tensor: name, what: `unsupported zip compression method ${entry.compressionMethod} (only stored and deflated)` });
      }
      let header: NpyHeader;
      try {
        header = await readMemberHeader(path, name, zip, entry);
      } catch (err) {
        if (err instanceof KquantError) throw err;
        throw new KquantError({ file: path, tensor: name, what: `corrupt zip member: ${zipMessage(err)}` });
      }
      const dataLength = entry.uncompressedSize - header.dataStart;
      if (dataLength !== header.byteLength) {
        const how = dataLength < header.byteLength ? "truncated" : "has trailing bytes";
        throw new KquantError({
          file: path,
          tensor: name,
          what: `data is ${dataLength} bytes but shape ${JSON.stringify(header.shape)} of ${header.dtype} needs ${header.byteLength} (member ${how})`,
        });
      }
      sources.push({
        info: { name, dtype: header.dtype, shape: header.shape, byteLength: header.byteLength, file: path },
        fill: (out) => readMemberData(path, name, zip, entry, header, out),
      });
    }
    return makeTensorReader(path, sources, null, close);
  } catch (err) {
    await close();
    throw err;
  }
}

async function readMemberData(path: string, name: string, zip: yauzl.ZipFile, entry: yauzl.Entry, header: NpyHeader, out: Uint8Array): Promise<void> {
  const dest = needsTranspose(header) ? new Uint8Array(header.byteLength) : out;
  let position = 0;
  let crc = 0;
  try {
    const stream = await openMember(zip, entry);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      crc = crc32(chunk, crc);
      const from = Math.max(0, header.dataStart - position);
      if (from < chunk.length) {
        const at = position + from - header.dataStart;
        if (at + chunk.length - from > dest.length) throw new Error(`member is longer than its header says`);
        dest.set(chunk.subarray(from), at);
      }
      position += chunk.length;
    }
  } catch (err) {
    throw new KquantError({ file: path, tensor: name, what: `corrupt zip member: ${zipMessage(err)}` });
  }
  if (position !== entry.uncompressedSize) {
    throw new KquantError({ file: path, tensor: name, what: `member is ${position} bytes, the zip directory says ${entry.uncompressedSize}` });
  }
  if (crc >>> 0 !== entry.crc32 >>> 0) {
    throw new KquantError({ file: path, tensor: name, what: `CRC-32 mismatch (data ${hex(crc)}, zip directory ${hex(entry.crc32)}): the archive is corrupt` });
  }
  npyDataToLittleEndianC(header, dest, out);
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, "0")}`;

export interface NpzEntry extends NpyTensor {
  /** Tensor name; the member is `<name>.npy`. */
  name: string;
}

export interface NpzOptions extends WriteOptions {
  /** Deflate members (numpy's savez_compressed) instead of storing them (savez). Default false. */
  compress?: boolean;
}

/** Member timestamps are fixed so the same tensors give the same bytes; local-time fields make it TZ-proof. */
const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0);
const CHUNK = 64 * 1024 * 1024;

function* chunked(parts: readonly Uint8Array[]): Generator<Buffer> {
  for (const part of parts) {
    for (let i = 0; i < part.length; i += CHUNK) {
      const piece = part.subarray(i, Math.min(part.length, i + CHUNK));
      yield Buffer.from(piece.buffer, piece.byteOffset, piece.length);
    }
  }
}

/** Writes `entries` in the given order as an .npz, atomically and deterministically. */
export async function writeNpz(path: string, entries: readonly NpzEntry[], options: NpzOptions = {}): Promise<void> {
  const seen = new Set<string>();
  const encoded = entries.map((entry) => {
    if (typeof entry.name !== "string" || entry.name === "") throw new KquantError({ file: path, what: `tensor name ${JSON.stringify(entry.name)} is not a non-empty string` });
    if (seen.has(entry.name)) throw new KquantError({ file: path, tensor: entry.name, what: "given twice" });
    seen.add(entry.name);
    return { member: `${entry.name}.npy`, parts: encodeNpy(path, entry.name, entry) };
  });
  const { default: yazl } = await import("yazl");
  const zip = new yazl.ZipFile();
  const compress = options.compress === true;
  for (const { member, parts } of encoded) {
    const size = parts.reduce((n, p) => n + p.length, 0);
    try {
      zip.addReadStreamLazy(member, { mtime: FIXED_MTIME, forceDosTimestamp: true, compress, size, mode: 0o100644 }, (cb) =>
        cb(null, Readable.from(chunked(parts))),
      );
    } catch (err) {
      // yazl refuses member paths such as "../x.npy" or "/abs.npy" synchronously.
      throw new KquantError({ file: path, tensor: member.slice(0, -4), what: `cannot be stored as zip member "${member}": ${zipMessage(err)}` });
    }
  }
  zip.end();
  // The members' bytes: the archive is a little larger (zip headers), so the free-space check is a lower bound.
  const memberBytes = encoded.reduce((n, { parts }) => n + parts.reduce((m, p) => m + p.length, 0), 0);
  const { fh, tempPath } = await openTemp(path, memberBytes);
  try {
    // Plain positional writes: a FileHandle write stream keeps the handle busy and close() then stalls.
    let position = 0;
    for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) {
      await writeFully(fh, chunk, position);
      position += chunk.length;
    }
  } catch (err) {
    await discardTemp(fh, tempPath);
    throw await writeError(err, path, memberBytes);
  }
  await commitTemp(fh, tempPath, path, options);
}
