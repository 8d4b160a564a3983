import { readFile } from "node:fs/promises";
import { join } from "node:path";
import yauzl from "yauzl";
import yazl from "yazl";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { byteLengthOf } from "../../src/formats/dtypes.js";
import { encodeNpy } from "../../src/formats/npy.js";
import { writeNpz, type NpzEntry } from "../../src/formats/npz.js";
import { openTensors } from "../../src/formats/open.js";
import type { StDType } from "../../src/formats/types.js";
import { listDir, patternBytes, rejection, tempDir } from "./helpers.js";

function entriesOf(): NpzEntry[] {
  const spec: [string, StDType, number[]][] = [
    ["zeta", "F32", [4, 5]],
    ["alpha", "I64", [3]],
    ["nested/name", "F16", [2, 2, 2]],
    ["flags", "BOOL", [0]],
    ["scalar", "F64", []],
  ];
  return spec.map(([name, dtype, shape], i) => ({ name, dtype, shape, bytes: patternBytes(byteLengthOf(dtype, shape), 40 + i) }));
}

async function zipMethods(path: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: false }, (err, zip) => {
      if (err) return reject(err);
      const out: Record<string, number> = {};
      zip.on("entry", (e: yauzl.Entry) => (out[e.fileName] = e.compressionMethod));
      zip.on("end", () => resolve(out));
      zip.on("error", reject);
    });
  });
}

describe(".npz", () => {
  for (const compress of [false, true]) {
    it(`round-trips ${compress ? "deflated" : "stored"} members in the given order`, async () => {
      const dir = await tempDir();
      const path = join(dir, "m.npz");
      const entries = entriesOf();
      await writeNpz(path, entries, { compress });
      const methods = await zipMethods(path);
      expect(methods).toEqual(Object.fromEntries(entries.map((e) => [`${e.name}.npy`, compress ? 8 : 0])));
      const r = await openTensors(path);
      expect(r.metadata).toBeNull();
      expect(r.tensors.map((t) => [t.name, t.dtype, t.shape, t.byteLength])).toEqual(entries.map((e) => [e.name, e.dtype, e.shape, e.bytes.length]));
      for (const e of [...entries].reverse()) expect(await r.read(e.name)).toEqual(e.bytes);
      await r.close();
      expect(await listDir(dir)).toEqual(["m.npz"]);
    });
  }

  it("is deterministic", async () => {
    const dir = await tempDir();
    for (const compress of [false, true]) {
      await writeNpz(join(dir, "1.npz"), entriesOf(), { compress });
      await new Promise((r) => setTimeout(r, 1100)); // a clock-dependent timestamp would differ now
      await writeNpz(join(dir, "2.npz"), entriesOf(), { compress });
      expect(await readFile(join(dir, "1.npz"))).toEqual(await readFile(join(dir, "2.npz")));
    }
  });

  it("reads members stored big-endian and in Fortran order by another zip writer", async () => {
    const dir = await tempDir();
    const path = join(dir, "x.npz");
    const be = new DataView(new ArrayBuffer(12));
    [7, -8, 9].forEach((v, i) => be.setInt32(i * 4, v, false));
    const header = (dict: string): Buffer => {
      const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
      const h = Buffer.alloc(total, 0x20);
      h.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
      h.writeUInt16LE(total - 10, 8);
      h.write(dict, 10, "latin1");
      h[total - 1] = 0x0a;
      return h;
    };
    const zip = new yazl.ZipFile();
    zip.addBuffer(Buffer.concat([header("{'descr': '>i4', 'fortran_order': False, 'shape': (3,), }"), Buffer.from(be.buffer)]), "be.npy", { compress: true });
    // 2x3 array [[1,2,3],[4,5,6]] stored column by column.
    zip.addBuffer(Buffer.concat([header("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }"), Buffer.from([1, 4, 2, 5, 3, 6])]), "f.npy", { compress: false });
    zip.end();
    await pipeline(zip.outputStream, createWriteStream(path));
    const r = await openTensors(path);
    expect(Array.from(new Int32Array((await r.read("be")).buffer))).toEqual([7, -8, 9]);
    expect(await r.read("f")).toEqual(new Uint8Array([1, 2, 3, 4, 5, 6]));
    await r.close();
  });

  it("refuses duplicate names and dtypes numpy lacks without leaving files", async () => {
    const dir = await tempDir();
    const path = join(dir, "d.npz");
    const e = entriesOf()[0]!;
    expect((await rejection(writeNpz(path, [e, e]))).message).toBe(`${path}: tensor "zeta": given twice`);
    expect((await rejection(writeNpz(path, [{ name: "q", dtype: "F8_E4M3", shape: [1], bytes: new Uint8Array(1) }]))).message).toMatch(/numpy has no F8_E4M3 dtype/);
    expect(await listDir(dir)).toEqual([]);
    expect(encodeNpy(path, "x", { dtype: "U8", shape: [2], bytes: new Uint8Array(2) })).toHaveLength(2);
  });
});

describe(".npz member names", () => {
  it("refuses names a zip cannot hold safely", async () => {
    const dir = await tempDir();
    const path = join(dir, "n.npz");
    const err = await rejection(writeNpz(path, [{ name: "../escape", dtype: "U8", shape: [1], bytes: new Uint8Array(1) }]));
    expect(err.message).toMatch(/tensor "\.\.\/escape": cannot be stored as zip member/);
    expect(await listDir(dir)).toEqual([]);
  });
});
