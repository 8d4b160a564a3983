import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KquantError } from "../../src/errors.js";
import { byteLengthOf, ST_DTYPES } from "../../src/formats/dtypes.js";
import { openTensors } from "../../src/formats/open.js";
import { createSafetensorsWriter } from "../../src/formats/safetensors-writer.js";
import type { PlannedTensor } from "../../src/formats/types.js";
import { listDir, patternBytes, rejection, tempDir } from "./helpers.js";

/** A safetensors file as the format spec lays it out: u64 LE header length, JSON header, data. */
function specFile(headerJson: string, data: Uint8Array, padTo8 = true): Uint8Array {
  let header = headerJson;
  if (padTo8) while (Buffer.byteLength(header) % 8 !== 0) header += " ";
  const h = Buffer.from(header, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return new Uint8Array(Buffer.concat([len, h, data]));
}

async function writeAll(path: string, planned: PlannedTensor[], data: Uint8Array[], metadata: Record<string, string> = {}): Promise<void> {
  const w = await createSafetensorsWriter(path, planned, metadata);
  for (let i = 0; i < planned.length; i++) await w.write(planned[i]!.name, data[i]!);
  await w.finish();
}

describe("safetensors writer + reader", () => {
  it("round-trips every dtype with metadata, in planned order", async () => {
    const dir = await tempDir();
    const path = join(dir, "all.safetensors");
    const planned: PlannedTensor[] = ST_DTYPES.map((dtype, i) => ({ name: `t.${dtype.toLowerCase()}`, dtype, shape: [2, 4 + (i % 3) * 4] }));
    planned.push({ name: "scalar", dtype: "F32", shape: [] }, { name: "empty", dtype: "BF16", shape: [0, 3] });
    const data = planned.map((t, i) => patternBytes(byteLengthOf(t.dtype, t.shape), i + 1));
    await writeAll(path, planned, data, { format: "pt", note: "ünïcödé" });

    const r = await openTensors(path);
    expect(r.metadata).toEqual({ format: "pt", note: "ünïcödé" });
    expect(r.tensors.map((t) => [t.name, t.dtype, t.shape, t.byteLength, t.file])).toEqual(
      planned.map((t, i) => [t.name, t.dtype, t.shape, data[i]!.length, path]),
    );
    for (let i = 0; i < planned.length; i++) expect(await r.read(planned[i]!.name)).toEqual(data[i]);
    const into = new Uint8Array(data[0]!.length);
    expect(await r.read(planned[0]!.name, into)).toBe(into);
    expect(into).toEqual(data[0]);
    await r.close();
    expect(await listDir(dir)).toEqual(["all.safetensors"]);
  });

  it("writes exactly the reference layout: compact header, __metadata__ first, space-padded to 8", async () => {
    const dir = await tempDir();
    const path = join(dir, "m.safetensors");
    const a = new Uint8Array(new Float32Array([1, -2, 3.5]).buffer);
    const b = new Uint8Array([1, 255]);
    await writeAll(path, [{ name: "a", dtype: "F32", shape: [3] }, { name: "b", dtype: "I8", shape: [1, 2] }], [a, b], { format: "pt" });
    const header = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"I8","shape":[1,2],"data_offsets":[12,14]}}';
    expect(new Uint8Array(await readFile(path))).toEqual(specFile(header, Buffer.concat([a, b])));
  });

  it("is deterministic: same input, same bytes", async () => {
    const dir = await tempDir();
    const planned: PlannedTensor[] = [{ name: "x", dtype: "F16", shape: [5, 3] }, { name: "y", dtype: "U8", shape: [7] }];
    const data = [patternBytes(30, 3), patternBytes(7, 4)];
    await writeAll(join(dir, "1.safetensors"), planned, data, { k: "v" });
    await writeAll(join(dir, "2.safetensors"), planned, data, { k: "v" });
    expect(await readFile(join(dir, "1.safetensors"))).toEqual(await readFile(join(dir, "2.safetensors")));
  });

  it("rewrites the header in place on finish(metadata) when it fits", async () => {
    const dir = await tempDir();
    const path = join(dir, "h.safetensors");
    const placeholder = "0".repeat(64);
    const w = await createSafetensorsWriter(path, [{ name: "w", dtype: "U8", shape: [3] }], { sha256: placeholder, format: "pt" });
    await w.write("w", new Uint8Array([9, 8, 7]));
    expect(await listDir(dir)).toHaveLength(1);
    expect((await listDir(dir))[0]).toMatch(/^\.h\.safetensors\.\d+\.[0-9a-f]+\.tmp$/);
    const real = "ab".repeat(32);
    await w.finish({ sha256: real, format: "pt" });
    const bytes = await readFile(path);
    const r = await openTensors(path);
    expect(r.metadata).toEqual({ sha256: real, format: "pt" });
    expect(await r.read("w")).toEqual(new Uint8Array([9, 8, 7]));
    await r.close();
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    expect(bytes.length).toBe(8 + headerLength + 3);
    expect(await listDir(dir)).toEqual(["h.safetensors"]);
  });

  it("pads a shorter final header with spaces and refuses one that outgrows the reservation", async () => {
    const dir = await tempDir();
    const short = join(dir, "short.safetensors");
    let w = await createSafetensorsWriter(short, [{ name: "w", dtype: "U8", shape: [1] }], { note: "x".repeat(40) });
    await w.write("w", new Uint8Array([1]));
    await w.finish({});
    const r = await openTensors(short);
    expect(r.metadata).toBeNull();
    await r.close();

    const long = join(dir, "long.safetensors");
    w = await createSafetensorsWriter(long, [{ name: "w", dtype: "U8", shape: [1] }], { sha256: "0".repeat(64) });
    await w.write("w", new Uint8Array([1]));
    const err = await rejection(w.finish({ sha256: "0".repeat(64), extra: "0".repeat(64) }));
    expect(err).toBeInstanceOf(KquantError);
    expect(err.message).toMatch(/final header is \d+ bytes but only \d+ were reserved/);
    expect(await listDir(dir)).toEqual(["short.safetensors"]);
  });

  it("abort() removes the temp file and leaves no output", async () => {
    const dir = await tempDir();
    const w = await createSafetensorsWriter(join(dir, "a.safetensors"), [{ name: "w", dtype: "F32", shape: [2] }, { name: "v", dtype: "F32", shape: [1] }], {});
    await w.write("w", new Uint8Array(8));
    expect(await listDir(dir)).toHaveLength(1);
    await w.abort();
    await w.abort();
    expect(await listDir(dir)).toEqual([]);
    expect((await rejection(w.write("v", new Uint8Array(4)))).message).toMatch(/aborted/);
  });

  it("refuses unplanned, duplicate, wrong-length and missing writes", async () => {
    const dir = await tempDir();
    const path = join(dir, "o.safetensors");
    const w = await createSafetensorsWriter(path, [{ name: "a", dtype: "I16", shape: [2] }, { name: "b", dtype: "I16", shape: [1] }, { name: "c", dtype: "U8", shape: [1] }], {});
    expect((await rejection(w.write("z", new Uint8Array(2)))).message).toBe(`${path}: tensor "z": not one of the 3 planned tensors`);
    expect((await rejection(w.write("a", new Uint8Array(3)))).message).toBe(`${path}: tensor "a": got 3 bytes, planned 4`);
    await w.write("c", new Uint8Array(1));
    expect((await rejection(w.write("c", new Uint8Array(1)))).message).toBe(`${path}: tensor "c": written twice`);
    await w.write("a", new Uint8Array(4));
    expect((await rejection(w.finish())).message).toBe(`${path}: finish() after 2 of 3 planned tensors ("b" is not written)`);
    expect(await listDir(dir)).toEqual([]);
  });

  it("writes planned tensors in any order at their planned offsets: the file is the one plan-order writes make", async () => {
    const dir = await tempDir();
    const planned: PlannedTensor[] = [0, 1, 2, 3, 4].map((i) => ({ name: `t${i}`, dtype: i % 2 === 0 ? "U8" : "F32", shape: [3 + 5 * i] }));
    const data = planned.map((t, i) => patternBytes(byteLengthOf(t.dtype, t.shape), 20 + i));
    await writeAll(join(dir, "ordered.safetensors"), planned, data);
    const w = await createSafetensorsWriter(join(dir, "shuffled.safetensors"), planned, {});
    for (const i of [3, 0, 4, 2, 1]) await w.write(planned[i]!.name, data[i]!);
    await w.finish();
    expect(await readFile(join(dir, "shuffled.safetensors"))).toEqual(await readFile(join(dir, "ordered.safetensors")));
  });

  it("writes tensors in byte ranges, in any order (a weight's row blocks as each is done): the file plan-order writes make", async () => {
    const dir = await tempDir();
    const planned: PlannedTensor[] = [0, 1, 2].map((i) => ({ name: `t${i}`, dtype: "U8", shape: [10 + 7 * i] }));
    const data = planned.map((t, i) => patternBytes(byteLengthOf(t.dtype, t.shape), 40 + i));
    await writeAll(join(dir, "ordered.safetensors"), planned, data);
    const w = await createSafetensorsWriter(join(dir, "ranges.safetensors"), planned, {});
    const parts: [number, number, number][] = [[2, 20, 24], [0, 4, 10], [1, 0, 17], [2, 0, 20], [0, 0, 4]];
    for (const [i, from, to] of parts) await w.writeAt(planned[i]!.name, from, data[i]!.subarray(from, to));
    await w.finish();
    expect(await readFile(join(dir, "ranges.safetensors"))).toEqual(await readFile(join(dir, "ordered.safetensors")));
  });

  it("refuses ranges that overlap or leave the tensor, and a finish before every byte is written", async () => {
    const dir = await tempDir();
    const path = join(dir, "r.safetensors");
    const w = await createSafetensorsWriter(path, [{ name: "a", dtype: "U8", shape: [8] }, { name: "e", dtype: "U8", shape: [0] }], {});
    await w.writeAt("a", 2, new Uint8Array(3));
    expect((await rejection(w.writeAt("a", 4, new Uint8Array(2)))).message).toBe(`${path}: tensor "a": written twice`);
    expect((await rejection(w.writeAt("a", 6, new Uint8Array(3)))).message).toBe(`${path}: tensor "a": bytes 6-9 are outside its planned 8`);
    expect((await rejection(w.writeAt("a", -1, new Uint8Array(1)))).message).toMatch(/bytes -1-0 are outside/);
    await w.writeAt("e", 0, new Uint8Array(0));
    expect((await rejection(w.write("e", new Uint8Array(0)))).message).toBe(`${path}: tensor "e": written twice`);
    await w.writeAt("a", 0, new Uint8Array(2));
    expect((await rejection(w.finish())).message).toBe(`${path}: finish() after 1 of 2 planned tensors ("a" is written 5 of 8 bytes)`);
    expect(await listDir(dir)).toEqual([]);
  });

  it("refuses bad plans before creating anything", async () => {
    const dir = await tempDir();
    const path = join(dir, "p.safetensors");
    const bad: [PlannedTensor[], Record<string, string>, RegExp][] = [
      [[{ name: "__metadata__", dtype: "U8", shape: [1] }], {}, /reserved/],
      [[{ name: "a", dtype: "U8", shape: [1] }, { name: "a", dtype: "U8", shape: [1] }], {}, /tensor "a": planned twice/],
      [[{ name: "a", dtype: "F12" as never, shape: [1] }], {}, /unknown dtype "F12"/],
      [[{ name: "a", dtype: "F4", shape: [3] }], {}, /12 bits, not a whole number of bytes/],
      [[{ name: "a", dtype: "U8", shape: [1.5] }], {}, /not a list of non-negative integers/],
      [[{ name: "a", dtype: "U8", shape: [1] }], { n: 1 as never }, /metadata "n" is number/],
    ];
    for (const [planned, metadata, message] of bad) {
      const err = await rejection(createSafetensorsWriter(path, planned, metadata));
      expect(err).toBeInstanceOf(KquantError);
      expect(err.message).toMatch(message);
    }
    expect(await listDir(dir)).toEqual([]);
  });

  it("accepts concurrent writes issued in any order", async () => {
    const dir = await tempDir();
    const path = join(dir, "c.safetensors");
    const planned: PlannedTensor[] = [0, 1, 2, 3].map((i) => ({ name: `t${i}`, dtype: "F32", shape: [1000 + i] }));
    const data = planned.map((t, i) => patternBytes(byteLengthOf(t.dtype, t.shape), 10 + i));
    const w = await createSafetensorsWriter(path, planned, {});
    await Promise.all([2, 0, 3, 1].map((i) => w.write(planned[i]!.name, data[i]!)));
    await w.finish();
    const r = await openTensors(path);
    for (let i = 0; i < 4; i++) expect(await r.read(`t${i}`)).toEqual(data[i]);
    await r.close();
  });
});

describe("safetensors reader", () => {
  it("reads files whose header lists tensors out of data order, unpadded, and reports data order", async () => {
    const dir = await tempDir();
    const path = join(dir, "x.safetensors");
    const header = '{"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]},"z":{"dtype":"F32","shape":[0],"data_offsets":[3,3]},"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}';
    await writeFile(path, specFile(header, new Uint8Array([1, 2, 3, 4, 5]), false));
    const r = await openTensors(path);
    expect(r.tensors.map((t) => t.name)).toEqual(["a", "z", "b"]);
    expect(await r.read("b")).toEqual(new Uint8Array([4, 5]));
    expect(await r.read("z")).toEqual(new Uint8Array(0));
    expect(r.metadata).toBeNull();
    await r.close();
  });

  it("reads a null __metadata__ as no metadata, as the reference does (mx.save_safetensors writes it)", async () => {
    const dir = await tempDir();
    const path = join(dir, "x.safetensors");
    await writeFile(path, specFile('{"__metadata__":null,"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', new Uint8Array([7, 9])));
    const r = await openTensors(path);
    expect(r.metadata).toBeNull();
    expect(await r.read("a")).toEqual(new Uint8Array([7, 9]));
    await r.close();
  });

  it("explains misuse of read()", async () => {
    const dir = await tempDir();
    const path = join(dir, "r.safetensors");
    await writeAll(path, [{ name: "w", dtype: "U8", shape: [4] }], [new Uint8Array(4)]);
    const r = await openTensors(path);
    expect((await rejection(r.read("nope"))).message).toBe(`${path}: tensor "nope": no such tensor`);
    expect((await rejection(r.read("w", new Uint8Array(3)))).message).toBe(`${path}: tensor "w": destination buffer is 3 bytes, tensor is 4`);
    await r.close();
    await r.close();
    expect((await rejection(r.read("w"))).message).toMatch(/already closed/);
  });

  it("notices a file truncated after it was opened", async () => {
    const dir = await tempDir();
    const path = join(dir, "t.safetensors");
    await writeAll(path, [{ name: "w", dtype: "U8", shape: [64] }], [new Uint8Array(64)]);
    const r = await openTensors(path);
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.length - 10));
    expect((await rejection(r.read("w"))).message).toMatch(/t\.safetensors: tensor "w": the file was truncated while kquant read it \(it is now 118 bytes, the data runs to byte 128\)$/);
    await r.close();
  });
});
