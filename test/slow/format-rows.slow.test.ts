/**
 * --scheme and --mlx weights cut into blocks of rows and streamed through a ring of slots
 * (weight-stream.ts streamTensors, format-slice.ts formatBlock), on two worker threads and in turn
 * in-process, from a source read by byte ranges or whole: the outputs written range by range at
 * their offsets are byte for byte those of the whole weight at once (formatSlice), for every
 * runnable llm-compressor preset, every MLX mode and --mlx's casts; a tensor written as it is
 * arrives whole.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatSlice, RefusedValues, type FormatJob, type FormatPart } from "../../src/pipeline/quantize/format-slice.js";
import { ringBuffers, streamTensors, type StreamSource, type StreamTensor } from "../../src/pipeline/quantize/weight-stream.js";
import { WorkerPool } from "../../src/pipeline/workers.js";
import { f32ToBf16Bits } from "../../src/quant/convert.js";
import { LLMC_PRESETS } from "../../src/quant/llmc/presets.js";
import { bundleWorker } from "../pipeline/worker-bundle.js";

let dir: string;
let pool: WorkerPool;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kquant-format-rows-"));
  pool = new WorkerPool(2, await bundleWorker(dir));
});
afterAll(async () => {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
});

const ROWS = 300; // not a multiple of 32 or 128: the last block is short
const COLS = 256;

/** Weights as bytes of `dtype` (F32 or BF16), rows of varied scale, some all-zero rows. */
function weightBytes(dtype: "F32" | "BF16"): Uint8Array {
  const x = new Float32Array(ROWS * COLS);
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const row = Math.floor(i / COLS);
    x[i] = row % 17 === 0 ? 0 : ((s / 2 ** 32 - 0.5) * 2 ** ((row % 9) - 4));
  }
  if (dtype === "F32") return new Uint8Array(x.buffer);
  const h = new Uint16Array(x.length);
  f32ToBf16Bits(x, h);
  return new Uint8Array(h.buffer);
}

const hex = (parts: readonly { bytes: Uint8Array }[]) => parts.map((p) => Buffer.from(p.bytes).toString("hex"));

/** A source holding `tensors`, read by byte ranges or, `ranged` false, only whole (in parts of 5000 bytes). */
function memorySource(tensors: Record<string, Uint8Array>, ranged: boolean): StreamSource {
  return {
    rangeReader: (name) => (ranged ? async (into, at) => into.set(tensors[name]!.subarray(at, at + into.length)) : null),
    async *readProgressively(name, into) {
      const b = tensors[name]!;
      for (let n = 0; n < b.length; n += 5000) {
        into.set(b.subarray(n, n + 5000), n);
        yield Math.min(b.length, n + 5000);
      }
      if (b.length === 0) yield 0;
    },
  };
}

/** A writer gathering byte ranges into planned buffers (each byte written once). */
function memoryWriter(planned: Record<string, number>) {
  const out = Object.fromEntries(Object.entries(planned).map(([n, len]) => [n, { bytes: new Uint8Array(len), written: new Uint8Array(len) }]));
  return {
    out,
    async writeAt(name: string, at: number, bytes: Uint8Array): Promise<void> {
      const o = out[name]!;
      expect(o.written.subarray(at, at + bytes.length).every((w) => w === 0), `${name} ${at} written once`).toBe(true);
      o.bytes.set(bytes, at);
      o.written.fill(1, at, at + bytes.length);
    },
  };
}

/** `job` on weight "w" (`bytes`) streamed beside a tensor "c" written as it is, in 16 KiB blocks, on `p`: the outputs written. */
async function streamed(p: WorkerPool | null, job: FormatJob, align: number, bytes: Uint8Array, lengths: number[], ranged: boolean): Promise<Uint8Array[]> {
  const copied = bytes.subarray(0, 40_001);
  const planned: Record<string, number> = { c: copied.length, ...Object.fromEntries(lengths.map((n, i) => [`w${i}`, n])) };
  const writer = memoryWriter(planned);
  const tensors: StreamTensor[] = [
    { name: "c", file: "m", byteLength: copied.length, format: null, outputs: [{ name: "c", byteLength: copied.length }], writer },
    { name: "w", file: "m", byteLength: bytes.length, format: { job, rows: ROWS, rowAlign: align }, outputs: lengths.map((n, i) => ({ name: `w${i}`, byteLength: n })), writer },
  ];
  await streamTensors(memorySource({ w: bytes, c: copied }, ranged), tensors, p, ringBuffers(tensors, p, 16 * 1024));
  for (const [name, o] of Object.entries(writer.out)) expect(o.written.every((w) => w === 1), `${name} whole`).toBe(true);
  expect(Buffer.from(writer.out.c!.bytes).equals(Buffer.from(copied))).toBe(true);
  return lengths.map((_, i) => writer.out[`w${i}`]!.bytes);
}

async function expectSameJoined(job: FormatJob, align: number, bytes: Uint8Array): Promise<void> {
  const parts: FormatPart[] = formatSlice(job, ROWS, bytes)!;
  const whole = hex(parts);
  // 16 KiB blocks: 8 to 32 of them here, on workers and in turn, read by ranges or whole.
  for (const [p, ranged] of [[pool, true], [pool, false], [null, true]] as const) {
    const into = await streamed(p, job, align, bytes, parts.map((q) => q.bytes.length), ranged);
    expect(hex(into.map((b) => ({ bytes: b })))).toEqual(whole);
  }
}

describe("streamTensors joins blocks of rows into the whole weight's bytes", () => {
  for (const preset of LLMC_PRESETS.filter((p) => p.refusal === null)) {
    it(`--scheme ${preset.name}`, async () => {
      const w = preset.weights!;
      for (const dtype of ["BF16", "F32"] as const) {
        const job: FormatJob = { kind: "llmc", preset: preset.name, dtype, cols: COLS, ...(w.strategy === "tensor_group" ? { globalScale: 1234.5 } : {}) };
        await expectSameJoined(job, w.strategy === "block" ? 128 : 32, weightBytes(dtype));
      }
    });
  }
  const mlx: [string, number, number][] = [["affine", 4, 64], ["affine", 8, 64], ["affine", 3, 32], ["affine", 6, 128], ["mxfp4", 4, 32], ["mxfp8", 8, 32], ["nvfp4", 4, 16]];
  for (const [mode, bits, groupSize] of mlx) {
    it(`--mlx ${mode} ${bits} bits, group ${groupSize}`, async () => {
      await expectSameJoined({ kind: "mlx", mode, bits, groupSize, own: "bfloat16", to: "bfloat16", cols: COLS }, 1, weightBytes("BF16"));
      await expectSameJoined({ kind: "mlx", mode, bits, groupSize, own: "float32", to: "bfloat16", cols: COLS }, 1, weightBytes("F32"));
    });
  }
  it("a checkValues job refuses a weight with a non-finite value in any block (RefusedValues), and quantizes a finite one", async () => {
    const job: FormatJob = { kind: "llmc", preset: "W4A16", dtype: "F32", cols: COLS, checkValues: true };
    const finite = weightBytes("F32");
    await expectSameJoined(job, 32, finite);
    const bad = finite.slice();
    new Float32Array(bad.buffer, 0, ROWS * COLS)[(ROWS - 3) * COLS + 5] = NaN; // in the last block
    const lengths = formatSlice({ ...job, checkValues: false }, ROWS, finite)!.map((p) => p.bytes.length);
    for (const p of [pool, null]) await expect(streamed(p, job, 32, bad, lengths, true)).rejects.toBeInstanceOf(RefusedValues);
  });
  it("--mlx casts of kept tensors", async () => {
    await expectSameJoined({ kind: "cast", own: "float32", to: "bfloat16", cols: COLS }, 1, weightBytes("F32"));
    await expectSameJoined({ kind: "cast", own: "bfloat16", to: "float32", cols: COLS }, 1, weightBytes("BF16"));
  });
});
