/**
 * Files past 4 GiB and tensors past 2 GiB: offsets beyond 32 bits, reads that need several fs calls,
 * and memory that stays near one tensor. The first file is sparse (ftruncate + patterns at the
 * tensors' ends), built from the format spec rather than by kquant's writer.
 */
import { mkdtemp, open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import { createSafetensorsWriter } from "../../src/formats/safetensors-writer.js";
import type { StDType } from "../../src/formats/types.js";

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const EDGE = MiB;
/** Per-test timeout, so the file also survives a run under the default config. */
const SLOW = 15 * 60_000;

interface Spec {
  name: string;
  dtype: StDType;
  shape: number[];
  bytes: number;
}

const specs: Spec[] = [
  { name: "head", dtype: "U8", shape: [1000], bytes: 1000 },
  { name: "big", dtype: "U8", shape: [2 * GiB + 12345], bytes: 2 * GiB + 12345 },
  { name: "mid", dtype: "F32", shape: [2 ** 29], bytes: 2 * GiB },
  { name: "tail", dtype: "I16", shape: [3000], bytes: 6000 },
];
const largest = Math.max(...specs.map((s) => s.bytes));

/** A deterministic, tensor-specific pattern for the first and last EDGE bytes. */
function edge(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function isZero(bytes: Uint8Array): boolean {
  const zeros = Buffer.alloc(64 * MiB);
  for (let i = 0; i < bytes.length; i += zeros.length) {
    const piece = bytes.subarray(i, Math.min(bytes.length, i + zeros.length));
    if (Buffer.compare(piece, zeros.subarray(0, piece.length)) !== 0) return false;
  }
  return true;
}

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kquant-large-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
}, SLOW);

describe("safetensors beyond 4 GiB", () => {
  it("reads a sparse > 4 GiB file tensor by tensor with bounded memory", async () => {
    const path = join(dir, "sparse.safetensors");
    let offset = 0;
    const entries = specs.map((s) => {
      const e = `"${s.name}":{"dtype":"${s.dtype}","shape":${JSON.stringify(s.shape)},"data_offsets":[${offset},${offset + s.bytes}]}`;
      offset += s.bytes;
      return e;
    });
    let header = `{${entries.join(",")}}`;
    while (header.length % 8 !== 0) header += " ";
    const dataStart = 8 + header.length;
    const fh = await open(path, "w");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    await fh.write(Buffer.concat([len, Buffer.from(header)]), 0, 8 + header.length, 0);
    await fh.truncate(dataStart + offset);
    let position = dataStart;
    for (const [i, s] of specs.entries()) {
      const n = Math.min(EDGE, Math.floor(s.bytes / 2));
      await fh.write(edge(i, n), 0, n, position);
      await fh.write(edge(i + 100, n), 0, n, position + s.bytes - n);
      position += s.bytes;
    }
    await fh.close();
    expect((await stat(path)).size).toBeGreaterThan(4 * GiB);

    const r = await openTensors(path);
    expect(r.tensors.map((t) => [t.name, t.byteLength])).toEqual(specs.map((s) => [s.name, s.bytes]));
    globalThis.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    for (const [i, s] of specs.entries()) {
      let bytes: Uint8Array | null = await r.read(s.name);
      peak = Math.max(peak, process.memoryUsage().rss);
      const n = Math.min(EDGE, Math.floor(s.bytes / 2));
      expect(bytes.length).toBe(s.bytes);
      expect(Buffer.compare(bytes.subarray(0, n), edge(i, n))).toBe(0);
      expect(Buffer.compare(bytes.subarray(s.bytes - n), edge(i + 100, n))).toBe(0);
      expect(isZero(bytes.subarray(n, s.bytes - n))).toBe(true);
      bytes = null;
      globalThis.gc?.();
    }
    await r.close();
    const growth = peak - baseline;
    console.log(`sparse read (gc ${typeof globalThis.gc}): rss growth ${(growth / MiB).toFixed(0)} MiB, largest tensor ${(largest / MiB).toFixed(0)} MiB`);
    expect(growth).toBeLessThan(2 * largest + 150 * MiB);
  }, SLOW);

  it("writes a > 4 GiB file with the streaming writer and reads back every byte", async () => {
    const path = join(dir, "written.safetensors");
    const source = new Uint8Array(specs[1]!.bytes);
    for (let i = 0; i < source.length; i += 4096 + 7) source[i] = (i / 4096) & 0xff;
    source.set(edge(1, EDGE), 0);
    source.set(edge(2, EDGE), source.length - EDGE);
    const dataOf = (s: Spec): Uint8Array => source.subarray(source.length - s.bytes);

    const w = await createSafetensorsWriter(path, specs.map(({ name, dtype, shape }) => ({ name, dtype, shape })), { sha256: "0".repeat(64) });
    for (const s of specs) await w.write(s.name, dataOf(s));
    await w.finish({ sha256: "f".repeat(64) });
    expect((await stat(path)).size).toBeGreaterThan(4 * GiB);

    const r = await openTensors(path);
    expect(r.metadata).toEqual({ sha256: "f".repeat(64) });
    const into = new Uint8Array(largest);
    globalThis.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    for (const s of specs) {
      const bytes = await r.read(s.name, into.subarray(0, s.bytes));
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(Buffer.compare(bytes, dataOf(s))).toBe(0);
    }
    await r.close();
    const growth = peak - baseline;
    console.log(`written read-back into one buffer: rss growth ${(growth / MiB).toFixed(0)} MiB`);
    expect(growth).toBeLessThan(2 * largest + 150 * MiB);
  }, SLOW);
});
