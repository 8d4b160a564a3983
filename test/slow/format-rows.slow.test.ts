/**
 * --scheme and --mlx weights cut into blocks of rows (format-slice.ts formatRows), on two worker
 * threads and in turn in-process: the joined outputs are byte for byte those of the whole weight
 * at once (formatSlice), for every runnable llm-compressor preset and every MLX mode.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatRows, formatSlice, type FormatJob, type FormatPart } from "../../src/pipeline/quantize/format-slice.js";
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

const hex = (parts: FormatPart[]) => parts.map((p) => `${p.suffix} ${p.dtype} [${p.shape}] ${Buffer.from(p.bytes).toString("hex")}`);

async function expectSameJoined(job: FormatJob, align: number, bytes: Uint8Array): Promise<void> {
  const whole = hex(formatSlice(job, ROWS, bytes));
  // 16 KiB blocks: 8 to 32 of them here.
  expect(hex(await formatRows(pool, job, ROWS, align, bytes, 16 * 1024))).toEqual(whole);
  expect(hex(await formatRows(null, job, ROWS, align, bytes, 16 * 1024))).toEqual(whole);
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
});
