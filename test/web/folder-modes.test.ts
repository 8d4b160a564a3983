/**
 * web/folder-modes.ts outside the browser (src/'s node:fs in place of the page's file system):
 * the bytes a --scheme run reads (the progress bar's whole) are the input's once plus each weight
 * the run quantizes once more, as the CLI's output tells which; --mlx reads the input once. The
 * runs themselves are compared with the CLI's in Chromium (test/slow/page.slow.test.ts, the slow suite).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import { folderModeBytesToRead } from "../../web/folder-modes.js";
import type { Choice } from "../../web/protocol.js";
import { runCli, tempDir } from "../support/cli.js";
import { writeModelFolder } from "../layouts/model-folder.js";

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const choiceOf = (mode: string, scheme: string, ignore: string[] = []): Choice => ({
  mode,
  blockSize: null,
  float8Format: "e4m3",
  backend: "tensorflow",
  layout: "",
  recipe: "",
  folder: { scheme, ignore, mlxMode: "affine", bits: null, dtype: "" },
});

describe("the bytes a folder-mode run reads", () => {
  it("--scheme: the input once, and each weight it quantizes once more; --mlx: the input once", async () => {
    const model = join(dir, "model");
    mkdirSync(model);
    await writeModelFolder(model);
    const source = await openTensors(join(model, "model.safetensors"));
    await source.close();
    const total = source.tensors.reduce((n, t) => n + t.byteLength, 0);
    for (const [scheme, ignore] of [["W8A16", []], ["MXFP4A16", ["lm_head"]], ["FP8_BLOCK", []]] as const) {
      const out = join(dir, `out-${scheme}`);
      expect((await runCli("quantize", model, "--scheme", scheme, ...ignore.flatMap((e) => ["--ignore", e]), "-o", out, "-q")).code).toBe(0);
      const written = await openTensors(join(out, "model.safetensors.index.json"));
      await written.close();
      // A weight the run quantized is stored under new names (weight_packed, weight_scale, ...): its module's weight_scale.
      const quantized = source.tensors.filter((t) => t.name.endsWith(".weight") && written.tensors.some((w) => w.name === `${t.name}_scale`));
      expect(quantized.length, scheme).toBeGreaterThan(0);
      const want = total + quantized.reduce((n, t) => n + t.byteLength, 0);
      expect(await folderModeBytesToRead(model, choiceOf("scheme", scheme, [...ignore]), total), scheme).toBe(want);
    }
    expect(await folderModeBytesToRead(model, choiceOf("mlx", ""), total)).toBe(total);
  });
});
