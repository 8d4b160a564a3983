/**
 * `--scheme` on a weight holding a non-finite value (scheme-run.ts, from source, in-process). Without
 * NVFP4's global scale the run writes straight away, its blocks refusing non-finite values; a
 * refusal starts it again after a values pass. Either way the weight stays float, its module goes
 * into quantization_config's ignore list (the folder is the one an explicit --ignore of it makes),
 * and --strict writes nothing.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openTensors } from "../../../src/formats/open.js";
import { runScheme } from "../../../src/pipeline/quantize/scheme-run.js";
import { tempDir } from "../../support/cli.js";
import { writeSafetensors } from "../../support/files.js";
import { CONFIG, modelTensors } from "../../layouts/model-folder.js";

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

const BAD = "model.layers.0.mlp.down_proj";

/** dir/model: layouts/model-folder.ts's tensors, `BAD`.weight with a NaN at element 77. */
async function folderWithNaN(): Promise<string> {
  const path = join(dir, "model");
  mkdirSync(path);
  const tensors = modelTensors();
  (tensors.find((t) => t.name === `${BAD}.weight`)!.data as Float32Array)[77] = NaN;
  await writeSafetensors(join(path, "model.safetensors"), tensors);
  await import("node:fs/promises").then((fs) => fs.writeFile(join(path, "config.json"), JSON.stringify(CONFIG)));
  return path;
}

const files = (out: string) => ["model.safetensors", "config.json"].map((f) => readFileSync(join(out, f)));

describe("--scheme on a weight with a non-finite value", () => {
  for (const scheme of ["FP8_DYNAMIC", "MXFP4A16", "W8A8"]) {
    it(`${scheme}: keeps it float with its reason, ignores its module, as --ignore of it would`, async () => {
      const input = await folderWithNaN();
      const report = await runScheme({ input, output: join(dir, "out"), scheme, threads: 0 });
      expect(report.kept).toContainEqual({ name: `${BAD}.weight`, reason: expect.stringMatching(/^non-finite value NaN at element 77: /) });
      const r = await openTensors(join(dir, "out", "model.safetensors"));
      try {
        expect(r.tensors.find((t) => t.name === `${BAD}.weight`)?.dtype).toBe("F32");
        expect(r.tensors.some((t) => t.name.startsWith(`${BAD}.weight_`))).toBe(false);
      } finally {
        await r.close();
      }
      const config = JSON.parse(readFileSync(join(dir, "out", "config.json"), "utf8")) as { quantization_config: { ignore: string[] } };
      expect(config.quantization_config.ignore).toContain(BAD);
      const kept = report.kept.map((k) => k.name.replace(/\.weight$/, ""));
      await runScheme({ input, output: join(dir, "ignored"), scheme, ignore: kept, threads: 0 });
      expect(files(join(dir, "out"))).toEqual(files(join(dir, "ignored")));
    });
  }

  it("--dry-run's values pass (the one NVFP4 always takes) finds it as the writing run does", async () => {
    const input = await folderWithNaN();
    const dry = await runScheme({ input, output: join(dir, "out"), scheme: "FP8_DYNAMIC", dryRun: true, threads: 0 });
    const run = await runScheme({ input, output: join(dir, "out"), scheme: "FP8_DYNAMIC", threads: 0 });
    expect(dry.kept).toEqual(run.kept);
    expect(dry.kept.map((k) => k.name)).toContain(`${BAD}.weight`);
    expect(existsSync(join(dir, "out"))).toBe(true);
  });

  it("--strict refuses it, naming it, and writes nothing (no output, no staging folder)", async () => {
    const input = await folderWithNaN();
    const before = readdirSync(dir);
    await expect(runScheme({ input, output: join(dir, "out"), scheme: "FP8_DYNAMIC", strict: true, threads: 0 })).rejects.toThrow(
      new RegExp(`tensor "${BAD}\\.weight": FP8_DYNAMIC: non-finite value NaN at element 77`),
    );
    expect(existsSync(join(dir, "out"))).toBe(false);
    expect(readdirSync(dir)).toEqual(before);
  });
});
