/**
 * yauzl in the page: the part of its API src/formats/npz.ts uses (open, lazy entries, read
 * streams, close), over the page's file system (vfs.ts), so .npz archives are read by File.slice
 * with random access, as the CLI reads them: the end-of-central-directory record (zip64 too),
 * the central directory one entry at a time, each member's bytes through its local header, stored
 * or deflated (the browser's DecompressionStream "deflate-raw"). The checks and their messages are
 * yauzl 3.4's (validateEntrySizes, strictFileNames; CRC-32 is npz.ts's own), and a corrupt deflate
 * stream's is zlib's where the browser passes zlib's on (Chromium does).
 */
import { crc32 } from "../../src/formats/crc32.js";
import { Buffer } from "./buffer.js";
import { open as openFile, type FileHandle } from "../vfs.js";

type Callback<T> = (err: Error | null, value?: T) => void;

/** yauzl's options; the page reads as npz.ts asks (lazyEntries, validateEntrySizes, strictFileNames). */
export interface Options {
  lazyEntries?: boolean;
  autoClose?: boolean;
  validateEntrySizes?: boolean;
  strictFileNames?: boolean;
}

/** Reads exactly `length` bytes at `position` ("unexpected EOF" as yauzl says it when the file is shorter). */
async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const out = new Buffer(length);
  let have = 0;
  while (have < length) {
    const { bytesRead } = await fh.read(out, have, length - have, position + have);
    if (bytesRead === 0) throw new Error("unexpected EOF");
    have += bytesRead;
  }
  return out;
}

const u16 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);
const u32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
/** A 64-bit little-endian integer as a Number (exact up to 2^53, as yauzl reads it). */
const u64 = (b: Uint8Array, at: number) => u32(b, at + 4) * 0x100000000 + u32(b, at);

// prettier-ignore
const CP437 = "\u0000☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼ !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~⌂ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■ ";

function decode(bytes: Uint8Array, utf8: boolean): string {
  if (utf8) return new TextDecoder().decode(bytes);
  let s = "";
  for (const b of bytes) s += CP437[b];
  return s;
}

function extraFields(raw: Uint8Array): { id: number; data: Uint8Array }[] {
  const out: { id: number; data: Uint8Array }[] = [];
  let i = 0;
  while (i < raw.length - 3) {
    const id = u16(raw, i);
    const end = i + 4 + u16(raw, i + 2);
    if (end > raw.length) throw new Error("extra field length exceeds extra field buffer size");
    out.push({ id, data: raw.subarray(i + 4, end) });
    i = end;
  }
  return out;
}

/** The entry's name as yauzl decodes it: the Info-ZIP Unicode Path field, else UTF-8 (flag 0x800) or CP437. */
function fileNameOf(flags: number, raw: Uint8Array, extras: { id: number; data: Uint8Array }[], strict: boolean): string {
  let name: string | null = null;
  for (const e of extras) {
    if (e.id !== 0x7075 || e.data.length < 6 || e.data[0] !== 1 || u32(e.data, 1) !== crc32(raw) >>> 0) continue;
    name = decode(e.data.subarray(5), true);
    break;
  }
  name ??= decode(raw, (flags & 0x800) !== 0);
  return strict ? name : name.replace(/\\/g, "/");
}

function fileNameProblem(name: string): string | null {
  if (name.includes("\\")) return `invalid characters in fileName: ${name}`;
  if (/^[a-zA-Z]:/.test(name) || name.startsWith("/")) return `absolute path: ${name}`;
  if (name.split("/").includes("..")) return `invalid relative path: ${name}`;
  return null;
}

/** One central-directory entry (the fields npz.ts reads). */
export class Entry {
  fileName = "";
  generalPurposeBitFlag = 0;
  compressionMethod = 0;
  crc32 = 0;
  compressedSize = 0;
  uncompressedSize = 0;
  relativeOffsetOfLocalHeader = 0;
  isEncrypted(): boolean {
    return (this.generalPurposeBitFlag & 0x1) !== 0;
  }
  isCompressed(): boolean {
    return this.compressionMethod === 8;
  }
}

/**
 * The browser's inflate error as zlib's (Chromium inflates with zlib and wraps its message:
 * "The compressed data was not valid: invalid block type."), so the line is the CLI's.
 */
function zlibError(err: unknown): unknown {
  const m = /^The compressed data was not valid: (.+?)\.?$/.exec(String((err as Error)?.message ?? ""));
  return m ? new Error(m[1]) : err;
}

/** A member's bytes as yauzl's read stream gives them to npz.ts: chunks in order, and destroy(). */
class MemberStream implements AsyncIterable<Buffer> {
  constructor(
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    private readonly expected: number | null,
  ) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    let count = 0;
    try {
      for (;;) {
        const { done, value } = await this.reader.read().catch((err: unknown) => {
          throw zlibError(err);
        });
        if (done) break;
        count += value.length;
        if (this.expected !== null && count > this.expected) throw new Error(`too many bytes in the stream. expected ${this.expected}. got at least ${count}`);
        yield new Buffer(value.buffer as ArrayBuffer, value.byteOffset, value.length);
      }
      if (this.expected !== null && count < this.expected) throw new Error(`not enough bytes in the stream. expected ${this.expected}. got only ${count}`);
    } finally {
      this.destroy();
    }
  }

  destroy(): void {
    this.reader.cancel().catch(() => undefined);
  }
}

/** Compressed bytes are read this many at a time (the vfs reads at most 16 MiB a call). */
const CHUNK = 4 * 1024 * 1024;

/** An open archive: entries one at a time (lazyEntries), each member's bytes as a stream. */
export class ZipFile {
  private readonly listeners = new Map<string, ((arg?: unknown) => void)[]>();
  private cursor: number;
  private entriesRead = 0;
  private open = true;
  private failed = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly fileSize: number,
    centralDirectoryOffset: number,
    readonly entryCount: number,
    private readonly options: Options,
  ) {
    this.cursor = centralDirectoryOffset;
  }

  on(event: string, listener: (arg?: never) => void): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener as (arg?: unknown) => void]);
    return this;
  }

  once(event: string, listener: (arg?: never) => void): this {
    const once = (arg?: unknown) => {
      this.listeners.set(event, (this.listeners.get(event) ?? []).filter((l) => l !== once));
      (listener as (arg?: unknown) => void)(arg);
    };
    return this.on(event, once);
  }

  private emit(event: string, arg?: unknown): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) l(arg);
  }

  /** Emits the next entry, or "end" after the last, or "error" once. */
  readEntry(): void {
    if (this.failed) return;
    if (this.entriesRead === this.entryCount) {
      setTimeout(() => this.emit("end"), 0);
      return;
    }
    this.nextEntry().then(
      (entry) => this.emit("entry", entry),
      (err: unknown) => {
        this.failed = true;
        this.emit("error", err);
      },
    );
  }

  private async nextEntry(): Promise<Entry> {
    const h = await readAt(this.fh, this.cursor, 46);
    const signature = u32(h, 0);
    if (signature !== 0x02014b50) throw new Error(`invalid central directory file header signature: 0x${signature.toString(16)}`);
    const e = new Entry();
    e.generalPurposeBitFlag = u16(h, 8);
    e.compressionMethod = u16(h, 10);
    e.crc32 = u32(h, 16);
    e.compressedSize = u32(h, 20);
    e.uncompressedSize = u32(h, 24);
    const nameLength = u16(h, 28);
    const extraLength = u16(h, 30);
    const commentLength = u16(h, 32);
    e.relativeOffsetOfLocalHeader = u32(h, 42);
    if (e.generalPurposeBitFlag & 0x40) throw new Error("strong encryption is not supported");
    this.cursor += 46;
    const rest = await readAt(this.fh, this.cursor, nameLength + extraLength + commentLength);
    const raw = rest.subarray(0, nameLength);
    const extras = extraFields(rest.subarray(nameLength, nameLength + extraLength));
    e.fileName = fileNameOf(e.generalPurposeBitFlag, raw, extras, !!this.options.strictFileNames);
    const problem = fileNameProblem(e.fileName);
    if (problem !== null) throw new Error(problem);
    this.cursor += rest.length;
    this.entriesRead += 1;
    const zip64 = extras.find((x) => x.id === 0x0001);
    if (zip64 !== undefined) {
      let at = 0;
      for (const [field, what] of [
        ["uncompressedSize", "uncompressed size"],
        ["compressedSize", "compressed size"],
        ["relativeOffsetOfLocalHeader", "relative header offset"],
      ] as const) {
        if (e[field] !== 0xffffffff) continue;
        if (at + 8 > zip64.data.length) throw new Error(`zip64 extended information extra field does not include ${what}`);
        e[field] = u64(zip64.data, at);
        at += 8;
      }
    }
    if (this.options.validateEntrySizes && e.compressionMethod === 0) {
      const expected = e.uncompressedSize + (e.isEncrypted() ? 12 : 0);
      if (e.compressedSize !== expected) throw new Error(`compressed/uncompressed size mismatch for stored file: ${e.compressedSize} != ${e.uncompressedSize}`);
    }
    return e;
  }

  /** The member's bytes (inflated when deflated), checked against the directory's size as yauzl checks them. */
  openReadStream(entry: Entry, callback: Callback<MemberStream>): void {
    this.memberStream(entry).then(
      (s) => callback(null, s),
      (err: Error) => callback(err),
    );
  }

  private async memberStream(entry: Entry): Promise<MemberStream> {
    if (!this.open) throw new Error("closed");
    if (entry.isEncrypted()) throw new Error("entry is encrypted, and options.decodeFileData !== false");
    if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) throw new Error(`unsupported compression method: ${entry.compressionMethod}`);
    const local = await readAt(this.fh, entry.relativeOffsetOfLocalHeader, 30);
    const signature = u32(local, 0);
    if (signature !== 0x04034b50) throw new Error(`invalid local file header signature: 0x${signature.toString(16)}`);
    const start = entry.relativeOffsetOfLocalHeader + 30 + u16(local, 26) + u16(local, 28);
    if (start + entry.compressedSize > this.fileSize) throw new Error(`file data overflows file bounds: ${start} + ${entry.compressedSize} > ${this.fileSize}`);
    const end = start + entry.compressedSize;
    let at = start;
    const fh = this.fh;
    const raw = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (at >= end) return controller.close();
        const n = Math.min(CHUNK, end - at);
        const bytes = await readAt(fh, at, n);
        at += n;
        controller.enqueue(bytes);
      },
    });
    const inflate = entry.compressionMethod === 8;
    const bytes = inflate ? raw.pipeThrough(new DecompressionStream("deflate-raw") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>) : raw;
    return new MemberStream(bytes.getReader(), inflate && this.options.validateEntrySizes ? entry.uncompressedSize : null);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.fh.close().catch(() => undefined);
  }
}

const EOCDR = 22;
const ZIP64_LOCATOR = 20;

/** yauzl.open: the archive at `path` with its central directory located, or yauzl's error. */
export function open(path: string, options: Options, callback: Callback<ZipFile>): void {
  openZip(path, options).then(
    (zip) => callback(null, zip),
    (err: Error) => callback(err),
  );
}

async function openZip(path: string, options: Options): Promise<ZipFile> {
  const fh = await openFile(path);
  try {
    const size = (await fh.stat()).size;
    const length = Math.min(ZIP64_LOCATOR + EOCDR + 0xffff, size);
    const tail = await readAt(fh, size - length, length);
    for (let i = length - EOCDR; i >= 0; i--) {
      if (u32(tail, i) !== 0x06054b50) continue;
      const expectedComment = length - i - EOCDR;
      const comment = u16(tail, i + 20);
      if (comment !== expectedComment) {
        throw new Error(`Invalid comment length. Expected: ${expectedComment}. Found: ${comment}. Are there extra bytes at the end of the file? Or is the end of central dir signature \`PK☺☻\` in the comment?`);
      }
      let disk = u16(tail, i + 4);
      let entryCount = u16(tail, i + 10);
      let offset = u32(tail, i + 16);
      if (i - ZIP64_LOCATOR >= 0 && u32(tail, i - ZIP64_LOCATOR) === 0x07064b50) {
        const record = await readAt(fh, u64(tail, i - ZIP64_LOCATOR + 8), 56);
        if (u32(record, 0) !== 0x06064b50) throw new Error("invalid zip64 end of central directory record signature");
        disk = u32(record, 16);
        entryCount = u64(record, 32);
        offset = u64(record, 48);
      }
      if (disk !== 0) throw new Error(`multi-disk zip files are not supported: found disk number: ${disk}`);
      return new ZipFile(fh, size, offset, entryCount, options);
    }
    throw new Error("End of central directory record signature not found. Either not a zip file, or file is truncated.");
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** npz.ts opens archives by path only. */
export function fromRandomAccessReader(): never {
  throw new Error("yauzl.fromRandomAccessReader is not in the page");
}

export default { open, fromRandomAccessReader, ZipFile, Entry };
