/** Layouts through worker threads: the same folder, byte for byte, as the in-process loop (workers never see a layout). */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMPRESSED_TENSORS_LAYOUT } from "../../src/layouts/compressed-tensors.js";
import type { Layout } from "../../src/layouts/layout.js";
import { MLX_LAYOUT } from "../../src/layouts/mlx.js";
import { rulesFromFlags, type QuantFlags } from "../../src/plan/from-flags.js";
import { runQuantize } from "../../src/pipeline/quantize/run-quantize.js";
import { bundleWorker } from "../pipeline/worker-bundle.js";
import { tempDir } from "../support/cli.js";
import { fileHash, listDir } from "../support/files.js";
import { writeModelFolder } from "./model-folder.js";

let dir: string;
let cleanup: () => void;
let workerUrl: URL;
beforeAll(async () => {
  ({ dir, cleanup } = tempDir());
  workerUrl = await bundleWorker(dir);
  mkdirSync(join(dir, "model"));
  await writeModelFolder(join(dir, "model"), true);
});
afterAll(() => cleanup());

describe("layouts with worker threads", () => {
  for (const [layout, flags] of [
    [COMPRESSED_TENSORS_LAYOUT, { mode: "int4", blockSize: 32 }],
    [MLX_LAYOUT, { mode: "int8", blockSize: 32 }],
  ] as [Layout, QuantFlags][]) {
    it(`${layout.name} ${flags.mode}: 2 threads write the bytes 0 threads write`, async () => {
      const outs = [];
      for (const threads of [0, 2]) {
        const out = join(dir, `${layout.name}-${threads}`);
        await runQuantize({ input: join(dir, "model"), output: out, rules: rulesFromFlags(flags, !!layout.int8Groups), layout, tag: flags.mode, options: {}, quiet: true, threads, workerUrl });
        outs.push(out);
      }
      expect(listDir(outs[1]!)).toEqual(listDir(outs[0]!));
      for (const n of listDir(outs[0]!)) expect(fileHash(join(outs[1]!, n)), n).toBe(fileHash(join(outs[0]!, n)));
    });
  }
});
