/// <reference lib="dom" />
/**
 * The page's yauzl (web/shims/yauzl.ts, over the page's file system web/vfs.ts) against the real
 * yauzl the CLI uses, on the same archives, read as src/formats/npz.ts reads them (same options,
 * lazy entries, one read stream per member): every entry's fields and bytes, or the error line,
 * are the same. The archives: yazl's stored and deflated members, zip64 records, UTF-8 and CP437
 * names, member and archive comments, and broken ones (truncated, trailing bytes, a bad central
 * or local signature, a stored size that lies, a name that climbs out, a deflate stream that does
 * not inflate). In Chromium: test/slow/page.slow.test.ts.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import yauzl from "yauzl";
import yazl from "yazl";
import { afterAll, describe, expect, it } from "vitest";
import * as shim from "../../web/shims/yauzl.js";
import { mount, reset } from "../../web/vfs.js";
import { tempDir } from "../support/cli.js";

const { dir, cleanup } = tempDir();
afterAll(cleanup);

/** npz.ts's options. */
const OPTIONS = { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: true };

interface Lib {
  open(path: string, options: typeof OPTIONS, cb: (err: Error | null, zip?: unknown) => void): void;
}
interface Zip {
  on(e: string, f: (x: never) => void): void;
  once(e: string, f: (x: never) => void): void;
  readEntry(): void;
  openReadStream(e: unknown, cb: (err: Error | null, s?: AsyncIterable<Uint8Array>) => void): void;
  close(): void;
}
interface AnEntry {
  fileName: string;
  compressionMethod: number;
  compressedSize: number;
  uncompressedSize: number;
  crc32: number;
  isEncrypted(): boolean;
}

/** Everything npz.ts would see of the archive at `path` through `lib`: each entry and its bytes' sha256, or the first error. */
async function readAll(lib: Lib, path: string): Promise<unknown> {
  let zip: Zip;
  try {
    zip = await new Promise<Zip>((res, rej) => lib.open(path, OPTIONS, (e, z) => (e ? rej(e) : res(z as Zip))));
  } catch (err) {
    return `open: ${(err as Error).message}`;
  }
  try {
    const entries: AnEntry[] = [];
    const listed = await new Promise<string | null>((res) => {
      zip.on("entry", (e: AnEntry) => {
        entries.push(e);
        zip.readEntry();
      });
      zip.once("end", () => res(null));
      zip.once("error", (err: Error) => res(`entries: ${err.message}`));
      zip.readEntry();
    });
    const out: unknown[] = [];
    for (const e of entries) {
      let data: string;
      try {
        const stream = await new Promise<AsyncIterable<Uint8Array>>((res, rej) => zip.openReadStream(e, (err, s) => (err ? rej(err) : res(s!))));
        const hash = createHash("sha256");
        for await (const chunk of stream) hash.update(chunk);
        data = hash.digest("hex");
      } catch (err) {
        data = `read: ${(err as Error).message}`;
      }
      out.push({ name: e.fileName, method: e.compressionMethod, sizes: [e.compressedSize, e.uncompressedSize], crc32: e.crc32, encrypted: e.isEncrypted(), data });
    }
    return { entries: out, listed };
  } finally {
    zip.close();
  }
}

/** Both readers on `bytes`, written at dir/name (the page's copy mounted at the same path). */
async function both(name: string, bytes: Uint8Array): Promise<[unknown, unknown]> {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  reset();
  mount(path, new Blob([new Uint8Array(bytes)]));
  return [await readAll(yauzl as unknown as Lib, path), await readAll(shim as unknown as Lib, path)];
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + ((i * i) >> 3)) & 0xff;
  return b;
}

/** A yazl archive of a few members (stored, deflated, empty, a UTF-8 name), optionally zip64 and with a comment. */
async function archive(opts: { zip64?: boolean; comment?: string; big?: number } = {}): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const common = { mtime: new Date(1980, 0, 1), forceDosTimestamp: true, forceZip64Format: !!opts.zip64 };
  zip.addBuffer(pattern(opts.big ?? 3000, 1), "a.npy", { ...common, compress: false });
  zip.addBuffer(pattern(5000, 2), "dir/b.npy", { ...common, compress: true, ...({ fileComment: "member comment" } as object) });
  zip.addBuffer(Buffer.alloc(0), "empty.npy", { ...common, compress: false });
  zip.addBuffer(pattern(700, 3), "名前.npy", { ...common, compress: true });
  zip.end({ forceZip64Format: !!opts.zip64, comment: opts.comment ?? "" });
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** `bytes` with `from` (found once) replaced by `to` of the same length, everywhere it occurs. */
function patched(bytes: Buffer, from: string | Buffer, to: string | Buffer): Buffer {
  const a = Buffer.from(from);
  const b = Buffer.from(to);
  const out = Buffer.from(bytes);
  for (let at = out.indexOf(a); at >= 0; at = out.indexOf(a, at + 1)) b.copy(out, at);
  return out;
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

describe("web/shims/yauzl.ts reads what yauzl reads, and refuses what it refuses, in its words", () => {
  it("stored and deflated members, an empty one, UTF-8 and plain names, comments", async () => {
    const [want, got] = await both("plain.zip", await archive({ comment: "archive comment" }));
    expect((want as { entries: unknown[] }).entries).toHaveLength(4);
    expect(got).toEqual(want);
  });

  it("zip64 records (end of central directory, locator, extra fields)", async () => {
    const bytes = await archive({ zip64: true });
    expect(bytes.includes(u32(0x06064b50))).toBe(true);
    const [want, got] = await both("zip64.zip", bytes);
    expect((want as { entries: unknown[] }).entries).toHaveLength(4);
    expect(got).toEqual(want);
  });

  it("members larger than one read (the shim reads 4 MiB at a time)", async () => {
    const [want, got] = await both("big.zip", await archive({ big: 4 * 1024 * 1024 + 17 }));
    expect(got).toEqual(want);
  });

  it("a CP437 name (no UTF-8 flag)", async () => {
    // "a.npy" → "\x80.npy" in both headers, without yazl's UTF-8 flag: CP437's Ç.
    const bytes = patched(await archive(), "a.npy", Buffer.from([0x80, 0x2e, 0x6e, 0x70, 0x79]));
    const cdAt = bytes.indexOf(u32(0x02014b50));
    bytes.writeUInt16LE(bytes.readUInt16LE(6) & ~0x800, 6);
    bytes.writeUInt16LE(bytes.readUInt16LE(cdAt + 8) & ~0x800, cdAt + 8);
    const [want, got] = await both("cp437.zip", bytes);
    expect(JSON.stringify(want)).toContain("Ç.npy");
    expect(got).toEqual(want);
  });

  it("broken archives: the same error, at the same step", async () => {
    const good = await archive({ comment: "c" });
    const cdAt = good.indexOf(u32(0x02014b50));
    const broken: Record<string, Buffer> = {
      "not-a-zip": Buffer.from("not a zip at all, just some text that is long enough to scan\n".repeat(4)),
      empty: Buffer.alloc(0),
      truncated: good.subarray(0, good.length - 30),
      "trailing-bytes": Buffer.concat([good, Buffer.from("xx")]),
      "bad-central-signature": Buffer.concat([good.subarray(0, cdAt), Buffer.from("PK\x01\x09"), good.subarray(cdAt + 4)]),
      "bad-local-signature": Buffer.concat([Buffer.from("PK\x03\x09"), good.subarray(4)]),
      "climbing-name": patched(good, "dir/b.npy", "../bb.npy"),
      "absolute-name": patched(good, "dir/b.npy", "/dirb.npy"),
      "backslash-name": patched(good, "dir/b.npy", "dir\\b.npy"),
    };
    // A stored member whose central size lies (compressed ≠ uncompressed).
    const lying = Buffer.from(good);
    lying.writeUInt32LE(lying.readUInt32LE(cdAt + 24) + 1, cdAt + 24);
    broken["stored-size-lies"] = lying;
    // A deflated member whose data does not inflate: the second member's first bytes set to an invalid block type.
    const bAt = good.indexOf("dir/b.npy") + "dir/b.npy".length;
    const inflateBad = Buffer.from(good);
    inflateBad[bAt] = 0xff;
    broken["bad-deflate"] = inflateBad;
    for (const [name, bytes] of Object.entries(broken)) {
      const [want, got] = await both(`${name}.zip`, bytes);
      expect(JSON.stringify(want), name).toMatch(/open: |entries: |read: /);
      expect(got, name).toEqual(want);
    }
  });

  it("fixtures/bad's .npz archives", async () => {
    for (const name of ["npz-bad-crc.npz", "npz-bad-deflate.npz", "npz-member-lies.npz", "npz-not-a-zip.npz", "npz-truncated.npz", "npz-member-not-npy.npz"]) {
      const bytes = readFileSync(join(__dirname, "..", "..", "fixtures", "bad", "files", name));
      const [want, got] = await both(name, bytes);
      expect(got, name).toEqual(want);
    }
  });
});
