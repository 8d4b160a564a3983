/**
 * --scheme and --mlx weights cut into blocks of rows (format-slice.ts formatRows), on two worker
 * threads (started as a progressive read lands, or all at once; reading and writing shared
 * memory in place) and in turn in-process: the outputs placed into their planned buffers are
 * byte for byte those of the whole weight at once
 * (formatSlice), for every runnable llm-compressor preset, every MLX mode and --mlx's casts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatRows, formatSlice, RefusedValues, type FormatJob, type FormatPart } from "../../src/pipeline/quantize/format-slice.js";
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

/** Fill counts of a read landing in parts of 5000 bytes (not a row boundary). */
async function* landing(total: number): AsyncIterable<number> {
  for (let n = 5000; n < total; n += 5000) yield n;
  yield total;
}

async function expectSameJoined(job: FormatJob, align: number, bytes: Uint8Array): Promise<void> {
  const parts: FormatPart[] = formatSlice(job, ROWS, bytes)!;
  const whole = hex(parts);
  // 16 KiB blocks: 8 to 32 of them here, on workers (as the rows land, or all there) and in turn.
  const shared = (n: number) => new Uint8Array(new SharedArrayBuffer(n));
  const source = shared(bytes.length);
  source.set(bytes);
  for (const [p, landed] of [[pool, landing(bytes.length)], [pool, undefined], [null, landing(bytes.length)]] as const) {
    const into = parts.map((q) => shared(q.bytes.length));
    await formatRows(p, job, ROWS, align, source, into, landed, 16 * 1024);
    expect(hex(into.map((b) => ({ bytes: b })))).toEqual(whole);
  }
}

describe("formatRows joins blocks of rows into the whole weight's bytes", () => {
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
  it("refuses, on workers, a source or outputs not on shared memory", async () => {
    const job: FormatJob = { kind: "cast", own: "float32", to: "bfloat16", cols: COLS };
    await expect(formatRows(pool, job, ROWS, 1, weightBytes("F32"), [new Uint8Array(ROWS * COLS * 2)])).rejects.toThrow(/SharedArrayBuffers/);
  });
  it("a checkValues job refuses a weight with a non-finite value in any block (RefusedValues), and quantizes a finite one", async () => {
    const job: FormatJob = { kind: "llmc", preset: "W4A16", dtype: "F32", cols: COLS, checkValues: true };
    const finite = weightBytes("F32");
    await expectSameJoined(job, 32, finite);
    const bad = new Uint8Array(new SharedArrayBuffer(finite.length));
    bad.set(finite);
    new Float32Array(bad.buffer, 0, ROWS * COLS)[(ROWS - 3) * COLS + 5] = NaN; // in the last block
    const into = formatSlice({ ...job, checkValues: false }, ROWS, finite)!.map((p) => new Uint8Array(new SharedArrayBuffer(p.bytes.length)));
    for (const p of [pool, null]) await expect(formatRows(p, job, ROWS, 32, bad, into, undefined, 16 * 1024)).rejects.toBeInstanceOf(RefusedValues);
  });
  it("--mlx casts of kept tensors", async () => {
    await expectSameJoined({ kind: "cast", own: "float32", to: "bfloat16", cols: COLS }, 1, weightBytes("F32"));
    await expectSameJoined({ kind: "cast", own: "bfloat16", to: "float32", cols: COLS }, 1, weightBytes("BF16"));
  });
});
