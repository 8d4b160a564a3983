import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rulesFromFlags } from "../../src/plan/from-flags.js";
import { runQuantize } from "../../src/pipeline/quantize/run-quantize.js";
import { readManifest, readParts, runDequantize } from "../../src/pipeline/read-back/dequantize.js";
import { dequantizeRecord } from "../../src/pipeline/read-back/record-values.js";
import { openTensors } from "../../src/formats/open.js";
import { layoutNamed } from "../../src/layouts/index.js";
import { geometryOf, layoutOf, storedOf } from "../../src/pipeline/manifest.js";
import type { StoredGeometry } from "../../src/plan/stored.js";
import { floatValues } from "../../src/pipeline/float-values.js";
import { errorHistogram } from "../../src/quant/error-histogram.js";
import { inFlight, inOrder, MIN_PARALLEL_CHECK_BYTES, readBackPool, SharedBuffers } from "../../src/pipeline/read-back/parallel-read-back.js";
import type { WorkerPool } from "../../src/pipeline/workers.js";
import { runVerify, type TensorVerdict } from "../../src/pipeline/read-back/verify.js";
import { runInspect } from "../../src/pipeline/read-back/inspect.js";
import { editTensor, writeGaussianCheckpoint } from "../pipeline/tamper.js";
import { bundleWorker } from "../pipeline/worker-bundle.js";

let dir: string;
let source: string;
let workerUrl: URL;

const TENSORS = [
  { name: "a.weight", shape: [64, 48] },
  { name: "b.weight", shape: [33, 20] },
  { name: "c.bias", shape: [20] },
  { name: "d.weight", shape: [96, 32] },
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kquant-parallel-verify-"));
  workerUrl = await bundleWorker(dir);
  source = join(dir, "source.safetensors");
  await writeGaussianCheckpoint(source, TENSORS);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("runVerify on worker threads", () => {
  for (const [tag, flags] of [
    ["int8", { mode: "int8" }],
    ["grouped", { mode: "int4", blockSize: 8 }],
    ["float8", { mode: "float8" }],
  ] as const) {
    it(`${tag}: the report of the in-process run, verdicts in manifest order, a damaged tensor named`, async () => {
      const output = join(dir, `q.${tag}.safetensors`);
      await runQuantize({ input: source, output, rules: rulesFromFlags(flags), tag, options: {}, quiet: true });
      await editTensor(output, "d.weight", (d) => (d[3] ^= 0x10));
      const seen: string[] = [];
      const threaded = await runVerify(output, { against: source, threads: 2, workerUrl }, (v: TensorVerdict) => seen.push(v.name));
      const inProcess = await runVerify(output, { against: source, threads: 0 });
      expect(threaded).toEqual(inProcess);
      expect(seen).toEqual(TENSORS.map((t) => t.name));
      expect(threaded.tensors.find((t) => t.name === "d.weight")!.problems.join()).toMatch(/hash differs/);
      expect(threaded.tensors.find((t) => t.name === "a.weight")!.metrics!.cosine).toBeGreaterThan(0.9);
    }, 60_000);
  }
});

describe("runVerify's error histogram", () => {
  it("on the workers and a layout that re-encodes (mlx): the in-process report", async () => {
    const mlxSource = join(dir, "mlx-source.safetensors");
    await writeGaussianCheckpoint(mlxSource, [
      { name: "a.weight", shape: [64, 64] },
      { name: "b.weight", shape: [32, 128] },
      { name: "c.bias", shape: [64] },
      { name: "d.weight", shape: [16, 64] },
    ]);
    const output = join(dir, "q.mlx.safetensors");
    await runQuantize({ input: mlxSource, output, rules: rulesFromFlags({ mode: "int4", blockSize: 32 }, true), tag: "mlx", options: {}, quiet: true, layout: layoutNamed("mlx") });
    const threaded = await runVerify(output, { against: mlxSource, threads: 2, workerUrl, histogramBins: 41 });
    const inProcess = await runVerify(output, { against: mlxSource, threads: 0, histogramBins: 41 });
    expect(threaded).toEqual(inProcess);
    expect(threaded.tensors.filter((t) => t.error_histogram !== undefined).length).toBe(3);
  }, 60_000);

  it("counted block by block on a tensor verify cuts into blocks, it is the whole tensor's histogram", async () => {
    const big = join(dir, "big.safetensors");
    await writeGaussianCheckpoint(big, [{ name: "w", shape: [2048, 1024] }]);
    const output = join(dir, "big.int8.safetensors");
    await runQuantize({ input: big, output, rules: rulesFromFlags({ mode: "int8" }), tag: "int8", options: {}, quiet: true });
    const report = await runVerify(output, { against: big, threads: 0, histogramBins: 41 });
    const t = report.tensors[0]!;
    const q = await openTensors(output);
    const o = await openTensors(big);
    try {
      const manifest = (await readManifest(q))!;
      const expected = storedOf("w", manifest.tensors.w!, layoutOf(manifest));
      const whole = dequantizeRecord(manifest.tensors.w!, await readParts(q, expected));
      const reference = floatValues("F32", await o.read("w"))!;
      expect(t.error_histogram).toEqual(errorHistogram(reference, whole, t.metrics!.maxAbsError, 41));
      expect(t.error_histogram!.counts.reduce((a, b) => a + b, 0)).toBe(2048 * 1024);
    } finally {
      await q.close();
      await o.close();
    }
  }, 60_000);
});

describe("runVerify of a record large enough to share between the workers", () => {
  it("the in-process report, bit for bit (metrics and histogram)", async () => {
    const big = join(dir, "shared.safetensors");
    await writeGaussianCheckpoint(big, [{ name: "w", shape: [8192, 1024] }]); // 32 MiB of float32
    for (const flags of [{ mode: "int8" }, { mode: "int4", blockSize: 32 }] as const) {
      const output = join(dir, `shared.${flags.mode}.safetensors`);
      await runQuantize({ input: big, output, rules: rulesFromFlags(flags), tag: "q", options: {}, quiet: true });
      const threaded = await runVerify(output, { against: big, threads: 2, workerUrl, histogramBins: 41 });
      const inProcess = await runVerify(output, { against: big, threads: 0, histogramBins: 41 });
      expect(threaded).toEqual(inProcess);
      expect(threaded.tensors[0]!.error_histogram!.counts.reduce((a, b) => a + b, 0)).toBe(8192 * 1024);
    }
  }, 120_000);
});

describe("runInspect --stats on worker threads", () => {
  it("the in-process report, tensors in file order", async () => {
    const threaded = await runInspect(source, { stats: true, bins: 7, threads: 2, workerUrl });
    const inProcess = await runInspect(source, { stats: true, bins: 7, threads: 0 });
    expect(threaded).toEqual(inProcess);
    expect(threaded.tensors.map((t) => t.name)).toEqual(TENSORS.map((t) => t.name));
    expect(threaded.tensors.every((t) => t.stats !== undefined && t.stats.histogram.counts.length === 7)).toBe(true);
  }, 60_000);
});

describe("runDequantize on worker threads", () => {
  for (const dtype of ["f32", "bf16"] as const) {
    it(`${dtype}: the bytes of the in-process run`, async () => {
      const output = join(dir, `q.dq.${dtype}.safetensors`);
      await runQuantize({ input: source, output, rules: rulesFromFlags({ mode: "int4", blockSize: 8 }), tag: "q", options: {}, quiet: true });
      const threaded = join(dir, `dq.${dtype}.t2.safetensors`);
      const inProcess = join(dir, `dq.${dtype}.t0.safetensors`);
      const a = await runDequantize({ input: output, output: threaded, dtype, threads: 2, workerUrl });
      const b = await runDequantize({ input: output, output: inProcess, dtype, threads: 0 });
      expect(a).toEqual({ ...b, output: threaded });
      expect(await readFile(threaded)).toEqual(await readFile(inProcess));
    }, 60_000);
  }
});

describe("runDequantize of a layout that re-encodes, on worker threads", () => {
  // compressed-tensors wants [out, in] Linear weights whose in the group size divides; MLX likewise.
  const LINEARS = [
    { name: "a.weight", shape: [64, 64] },
    { name: "b.weight", shape: [33, 128] },
    { name: "c.bias", shape: [64] },
  ];
  const cases = [
    ["compressed-tensors", { mode: "int8" }],
    ["compressed-tensors", { mode: "int4" }],
    ["compressed-tensors", { mode: "int4", blockSize: 32 }],
    ["mlx", { mode: "int4", blockSize: 32 }],
  ] as const;
  for (const [layout, flags] of cases) {
    it(`${layout} --${flags.mode}${"blockSize" in flags ? ` g${flags.blockSize}` : ""}: the bytes of the in-process run (f32 and bf16)`, async () => {
      const src = join(dir, "linears.safetensors");
      await writeGaussianCheckpoint(src, LINEARS);
      const tag = `${layout}-${flags.mode}-${"blockSize" in flags ? flags.blockSize : "pc"}`;
      const output = join(dir, `q.${tag}.safetensors`);
      await runQuantize({ input: src, output, rules: rulesFromFlags(flags, layout === "mlx"), tag, options: {}, quiet: true, layout: layoutNamed(layout) });
      for (const dtype of ["f32", "bf16"] as const) {
        const threaded = join(dir, `dq.${tag}.${dtype}.t2.safetensors`);
        const inProcess = join(dir, `dq.${tag}.${dtype}.t0.safetensors`);
        const a = await runDequantize({ input: output, output: threaded, dtype, threads: 2, workerUrl });
        const b = await runDequantize({ input: output, output: inProcess, dtype, threads: 0 });
        expect(a).toEqual({ ...b, output: threaded });
        expect(a.dequantized.map((t) => t.name)).toEqual(["a.weight", "b.weight"]);
        expect(await readFile(threaded)).toEqual(await readFile(inProcess));
        // And the values are the layout's runtime's, as verify reads them (not kquant's own dequantize).
        const q = await openTensors(output);
        const d = await openTensors(threaded);
        try {
          const manifest = (await readManifest(q))!;
          const rec = manifest.tensors["b.weight"]!;
          const written = new Map<string, Uint8Array>();
          for (const e of storedOf("b.weight", rec, layoutOf(manifest))) written.set(e.name, await q.read(e.name));
          const runtime = layoutNamed(layout).dequantize!({ name: "b.weight", dtype: rec.source_dtype, shape: rec.shape }, geometryOf(rec) as StoredGeometry, written);
          if (dtype === "f32") expect(floatValues("F32", await d.read("b.weight"))).toEqual(runtime);
        } finally {
          await q.close();
          await d.close();
        }
      }
    }, 60_000);
  }
});

describe("inOrder", () => {
  it("finishes in order with at most `limit` running, and throws the first failure in order after the rest settle", async () => {
    let running = 0;
    let peak = 0;
    const settled: number[] = [];
    const start = async (i: number) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, (5 - i) * 3));
      running--;
      settled.push(i);
      if (i === 2 || i === 3) throw new Error(`failed ${i}`);
      return i * 10;
    };
    const finished: number[] = [];
    await expect(inOrder([0, 1, 2, 3, 4], 3, start, (r) => void finished.push(r))).rejects.toThrow("failed 2");
    expect(finished).toEqual([0, 10]);
    expect(peak).toBe(3);
    // Nothing started after the failure is left running.
    expect(running).toBe(0);
  });

  it("keeps the weight in flight within the limit's bytes; a record heavier than that runs alone", async () => {
    const weights = [10, 10, 10, 40, 10, 10, 100, 5, 5];
    const limit = inFlight({ size: 2 } as WorkerPool, weights, (w) => w);
    expect(limit.count).toBe(3);
    expect(limit.bytes).toBe(1.5 * 100 + 32 * 1024 * 1024);
    const tight = { ...limit, bytes: 45 };
    let held = 0;
    let peakHeld = 0;
    const alone: boolean[] = [];
    let running = 0;
    const finished: number[] = [];
    await inOrder(
      weights.map((w, i) => [w, i] as const),
      { ...tight, weigh: ([w]) => w },
      async ([w]) => {
        running++;
        held += w;
        peakHeld = Math.max(peakHeld, w > 45 ? 0 : held);
        if (w > 45) alone.push(running === 1);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        held -= w;
        return w;
      },
      (_, [, i]) => void finished.push(i),
    );
    expect(finished).toEqual(weights.map((_, i) => i));
    expect(peakHeld).toBeLessThanOrEqual(45);
    expect(alone).toEqual([true]);
  });
});

describe("SharedBuffers", () => {
  it("reuses the smallest free buffer that fits, and makes one when none does", () => {
    const b = new SharedBuffers();
    const big = b.take(100);
    const small = b.take(10);
    expect(big.buffer).toBeInstanceOf(SharedArrayBuffer);
    b.give([big, small]);
    expect(b.take(8).buffer).toBe(small.buffer);
    expect(b.take(50).buffer).toBe(big.buffer);
    expect(b.take(50).buffer).not.toBe(big.buffer);
  });
});

describe("readBackPool", () => {
  it("starts workers from 8 MiB, for integrity checks alone from MIN_PARALLEL_CHECK_BYTES, and always when asked", async () => {
    const env = process.env.KQUANT_THREADS;
    delete process.env.KQUANT_THREADS;
    const MiB = 1024 * 1024;
    try {
      expect(readBackPool({ workerUrl }, 4 * MiB)).toBeNull();
      expect(readBackPool({ workerUrl }, 64 * MiB, MIN_PARALLEL_CHECK_BYTES)).toBeNull();
      const pools = [readBackPool({ workerUrl }, 64 * MiB), readBackPool({ workerUrl }, MIN_PARALLEL_CHECK_BYTES, MIN_PARALLEL_CHECK_BYTES), readBackPool({ workerUrl, threads: 1 }, 1, MIN_PARALLEL_CHECK_BYTES)];
      expect(pools.map((p) => p?.size ?? 0).every((n) => n >= 1)).toBe(true);
      expect(pools[2]!.size).toBe(1);
      await Promise.all(pools.map((p) => p!.close()));
      expect(readBackPool({ workerUrl, threads: 0 }, 1024 * MiB)).toBeNull();
    } finally {
      if (env !== undefined) process.env.KQUANT_THREADS = env;
    }
  });
});

describe("inFlight", () => {
  const MiB = 1024 * 1024;
  const pool = { size: 2 } as WorkerPool;
  const items = [16 * MiB, 256 * MiB, 100 * MiB];
  it("holds one record per worker and one being read, within 1.5 × the heaviest + 32 MiB", () => {
    const limit = inFlight(pool, items, (w) => w);
    expect(limit.count).toBe(3);
    expect(limit.bytes).toBe(1.5 * 256 * MiB + 32 * MiB);
    expect(inFlight(null, items, (w) => w).count).toBe(1);
  });
  it("lets a caller whose records hold only the tensor raise the weight (inspect --stats of float32: two of the largest)", () => {
    expect(inFlight(pool, items, (w) => w, 512 * MiB).bytes).toBe(512 * MiB);
    expect(inFlight(pool, [16 * MiB], (w) => w, 32 * MiB).bytes).toBe(1.5 * 16 * MiB + 32 * MiB);
  });
});
