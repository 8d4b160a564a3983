/**
 * Issue #22 item 6: an already-quantized checkpoint given as input is refused with what to do
 * instead: kquant's own output (a file, a folder), the compressed-tensors and MLX layouts' folders,
 * a transformers config with quantization_config, and an FP8 checkpoint (F8 weights beside
 * weight_scale_inv) that no kquant wrote. One line, exit 2, nothing written.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeModelFolder } from "../layouts/model-folder.js";
import { writeSafetensors } from "../support/files.js";
import { builtCli, caseDir, changes, expectOrderly, kquant, snapshot } from "./harness.js";

let root: string;
const cli = builtCli(async () => {
  root = caseDir("requantize");
  mkdirSync(join(root, "model"));
  await writeModelFolder(join(root, "model"));
  const made: string[][] = [
    ["quantize", "model", "--int8", "-o", "kq"],
    ["quantize", "model/model.safetensors", "--int8", "-o", "kq.safetensors"],
    ["quantize", "model", "--int8", "--layout", "compressed-tensors", "-o", "ct"],
    ["quantize", "model", "--int4", "--block-size", "32", "--layout", "mlx", "-o", "mlx"],
  ];
  for (const args of made) {
    const r = await kquant(cli(), [...args, "-q"], { cwd: root });
    expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  }
  mkdirSync(join(root, "hf"));
  await writeModelFolder(join(root, "hf"));
  const config = JSON.parse(readFileSync(join(root, "hf", "config.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(root, "hf", "config.json"), JSON.stringify({ ...config, quantization_config: { quant_method: "bitsandbytes" } }));
  await writeSafetensors(join(root, "fp8.safetensors"), [
    { name: "l.weight", dtype: "F8_E4M3", shape: [2, 2], data: new Uint8Array([1, 2, 3, 4]) },
    { name: "l.weight_scale_inv", dtype: "F32", shape: [1], data: new Float32Array([0.5]) },
  ]);
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("already-quantized input is refused", () => {
  const cases: [string, RegExp][] = [
    ["kq", /a kquant output/],
    ["kq.safetensors", /a kquant output \(manifest in __metadata__\)/],
    ["ct", /a kquant output|quantization_config/],
    ["mlx", /a kquant output|quantization \(MLX\)/],
    ["hf", /quantization_config/],
    ["fp8.safetensors", /F8_E4M3 "l\.weight" beside scale "l\.weight_scale_inv"/],
  ];
  for (const [input, why] of cases) {
    it(input, async () => {
      const before = snapshot(root);
      const r = await kquant(cli(), ["quantize", input, "--int8", "-o", input.endsWith(".safetensors") ? "again.safetensors" : "again"], { cwd: root });
      expectOrderly(r, input);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/already quantized: /);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).toMatch(/kquant dequantize/);
      expect(changes(before, snapshot(root))).toEqual([]);
    });
  }
});
