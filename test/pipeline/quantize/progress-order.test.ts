/** The progress bar names tensors in file order, also when worker threads finish them out of order. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { openTensors } from "../../../src/formats/open.js";
import { rulesFromFlags } from "../../../src/plan/from-flags.js";
import { runQuantize } from "../../../src/pipeline/quantize/run-quantize.js";
import { gaussian, writeSafetensors } from "../../support/files.js";
import { bundleWorker } from "../worker-bundle.js";

const labels: string[] = [];
vi.mock("../../../src/pipeline/progress.js", () => ({
  startProgress: async () => ({ advance: (_bytes: number, label: string) => void labels.push(label), stop() {} }),
}));

let dir: string;
let workerUrl: URL;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kquant-progress-order-"));
  workerUrl = await bundleWorker(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("progress with worker threads", () => {
  it("advances in file order, whatever order the workers finish in", async () => {
    const input = join(dir, "m.safetensors");
    // Large tensors and small ones interleaved, so later small ones finish first on other workers.
    const shapes = [[1024, 512], [8, 8], [512, 512], [4, 4], [1024, 256], [16, 16], [64]];
    await writeSafetensors(input, shapes.map((shape, i) => ({ name: `t${i}`, dtype: "F32" as const, shape, data: gaussian(shape.reduce((a, b) => a * b, 1), i + 1) })));
    const order = (await openTensors(input).then(async (r) => [r.tensors.map((t) => t.name), await r.close()]))[0] as string[];
    await runQuantize({ input, output: join(dir, "q.safetensors"), rules: rulesFromFlags({ mode: "int8" }), tag: "int8", options: {}, threads: 3, workerUrl });
    expect(labels).toEqual(order);
  });
});
