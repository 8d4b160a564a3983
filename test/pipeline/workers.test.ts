import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KquantError } from "../../src/errors.js";
import { WorkerPool } from "../../src/pipeline/workers.js";
import { stepFor } from "./steps.js";
import { bundleWorker } from "./worker-bundle.js";

let dir: string;
let workerUrl: URL;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kquant-workers-"));
  workerUrl = await bundleWorker(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const range = (length: number) => ({ buf: new SharedArrayBuffer(length), offset: 0, length });

describe("WorkerPool", () => {
  it("a KquantError thrown in a worker arrives as a KquantError with its fields and exit code", async () => {
    const pool = new WorkerPool(1, workerUrl);
    try {
      // A scale output one float short: the kernel refuses it, in the worker thread.
      const step = stepFor({ mode: "int8" }, [4, 4]);
      const run = pool.run({ kind: "quantize", step, source: range(64), outputs: [range(16), range(12)], allowNonFinite: false });
      const err = await run.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(KquantError);
      const k = err as KquantError;
      expect(k.exitCode).toBe(2);
      // Named by the worker from the task's step: the kernel's own message names no file or tensor.
      expect(k.file).toBe("x.safetensors");
      expect(k.tensor).toBe("w");
      expect(k.format()).toMatch(/^kquant: x\.safetensors: tensor "w": \S/);
    } finally {
      await pool.close();
    }
  });
});
