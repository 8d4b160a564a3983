/**
 * TensorReader.readProgressively: the bytes of `read`, landing front to back in parts for formats
 * that store them as they are, at once for the others; a short file is the same one-line error.
 * TensorReader.rangeReader: any byte range of such a tensor, none for the others.
 */
import { open, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KquantError } from "../../src/errors.js";
import { writeNpy } from "../../src/formats/npy.js";
import { writeNpz } from "../../src/formats/npz.js";
import { openTensors } from "../../src/formats/open.js";
import { createSafetensorsWriter } from "../../src/formats/safetensors-writer.js";
import { patternBytes, rejection, tempDir } from "./helpers.js";

/** Every `filled` the reader yields, with a copy of what had landed by then. */
async function collect(path: string, name: string, partBytes: number): Promise<{ ends: number[]; snapshots: Uint8Array[]; all: Uint8Array }> {
  const reader = await openTensors(path);
  try {
    const info = reader.tensors.find((t) => t.name === name)!;
    const into = new Uint8Array(info.byteLength).fill(0xee);
    const ends: number[] = [];
    const snapshots: Uint8Array[] = [];
    for await (const filled of reader.readProgressively(name, into, partBytes)) {
      ends.push(filled);
      snapshots.push(into.slice(0, filled));
    }
    return { ends, snapshots, all: into };
  } finally {
    await reader.close();
  }
}

async function writeOne(path: string, bytes: Uint8Array): Promise<void> {
  const w = await createSafetensorsWriter(path, [{ name: "a", dtype: "U8", shape: [3] }, { name: "w", dtype: "U8", shape: [bytes.length] }], {});
  await w.write("a", new Uint8Array([1, 2, 3]));
  await w.write("w", bytes);
  await w.finish();
}

describe("readProgressively", () => {
  it("safetensors: parts of partBytes, in order, each prefix already the tensor's bytes", async () => {
    const dir = await tempDir();
    const bytes = patternBytes(10_000, 3);
    const path = join(dir, "m.safetensors");
    await writeOne(path, bytes);
    const { ends, snapshots, all } = await collect(path, "w", 4096);
    expect(ends).toEqual([4096, 8192, 10_000]);
    snapshots.forEach((s, i) => expect(s).toEqual(bytes.subarray(0, ends[i])));
    expect(all).toEqual(bytes);
  });

  it("little-endian C-order .npy reads in parts; big-endian and Fortran order arrive converted, at once", async () => {
    const dir = await tempDir();
    const values = new Float32Array(Array.from({ length: 600 }, (_, i) => i - 300.5));
    const le = join(dir, "le.npy");
    await writeNpy(le, { dtype: "F32", shape: [20, 30], bytes: new Uint8Array(values.buffer) });
    const { ends, all } = await collect(le, "le", 1000);
    expect(ends).toEqual([1000, 2000, 2400]);
    expect(all).toEqual(new Uint8Array(values.buffer));

    // The same values stored big-endian, Fortran order: one part, already little-endian C order.
    const fortran = join(dir, "f.npy");
    const header = "{'descr': '>f4', 'fortran_order': True, 'shape': (20, 30), }";
    const padded = header + " ".repeat(64 - ((10 + header.length + 1) % 64)) + "\n";
    const body = Buffer.alloc(600 * 4);
    for (let c = 0; c < 30; c++) for (let r = 0; r < 20; r++) body.writeFloatBE(values[r * 30 + c]!, (c * 20 + r) * 4);
    const prelude = Buffer.from([0x93, ...Buffer.from("NUMPY"), 1, 0, padded.length & 0xff, padded.length >> 8]);
    const fh = await open(fortran, "w");
    await fh.write(Buffer.concat([prelude, Buffer.from(padded), body]));
    await fh.close();
    const converted = await collect(fortran, "f", 1000);
    expect(converted.ends).toEqual([2400]);
    expect(converted.all).toEqual(new Uint8Array(values.buffer));
  });

  it(".npz members (possibly compressed) arrive whole", async () => {
    const dir = await tempDir();
    const bytes = patternBytes(5000, 9);
    const path = join(dir, "w.npz");
    await writeNpz(path, [{ name: "w", dtype: "U8", shape: [5000], bytes }], { compress: true });
    const { ends, all } = await collect(path, "w", 1024);
    expect(ends).toEqual([5000]);
    expect(all).toEqual(bytes);
  });

  it("a file cut short fails with the one-line error of read, naming the file and the tensor", async () => {
    const dir = await tempDir();
    const path = join(dir, "m.safetensors");
    await writeOne(path, patternBytes(10_000, 5));
    const reader = await openTensors(path);
    await truncate(path, (await stat(path)).size - 3000);
    const err = await rejection(
      (async () => {
        for await (const filled of reader.readProgressively("w", new Uint8Array(10_000), 4096)) void filled;
      })(),
    );
    await reader.close();
    expect(err).toBeInstanceOf(KquantError);
    expect(err.message).toMatch(/m\.safetensors: tensor "w": the file was truncated while kquant read it \(it is now \d+ bytes, the data runs to byte \d+\)$/);
  });

  it("checks the destination's length and the tensor's name", async () => {
    const dir = await tempDir();
    const path = join(dir, "m.safetensors");
    await writeOne(path, patternBytes(100, 1));
    const reader = await openTensors(path);
    const drain = async (name: string, into: Uint8Array) => {
      for await (const filled of reader.readProgressively(name, into, 10)) void filled;
    };
    expect((await rejection(drain("w", new Uint8Array(99)))).message).toBe(`${path}: tensor "w": destination buffer is 99 bytes, tensor is 100`);
    expect((await rejection(drain("nope", new Uint8Array(1)))).message).toBe(`${path}: tensor "nope": no such tensor`);
    await reader.close();
  });
});

describe("rangeReader", () => {
  it("safetensors and little-endian C-order .npy: any range of the tensor's bytes; others (converted, compressed): null", async () => {
    const dir = await tempDir();
    const bytes = patternBytes(10_000, 7);
    const path = join(dir, "m.safetensors");
    await writeOne(path, bytes);
    const npz = join(dir, "w.npz");
    await writeNpz(npz, [{ name: "w", dtype: "U8", shape: [5000], bytes: bytes.subarray(0, 5000) }], { compress: true });
    const reader = await openTensors(path);
    const zipped = await openTensors(npz);
    try {
      const read = reader.rangeReader("w")!;
      for (const [from, to] of [[0, 10_000], [4095, 4097], [9_999, 10_000], [3, 3]] as const) {
        const into = new Uint8Array(to - from);
        await read(into, from);
        expect(into).toEqual(bytes.subarray(from, to));
      }
      expect((await rejection(read(new Uint8Array(2), 9_999))).message).toBe(`${path}: tensor "w": bytes 9999-10001 are outside its 10000`);
      expect(zipped.rangeReader("w")).toBeNull();
    } finally {
      await reader.close();
      await zipped.close();
    }
  });
});
