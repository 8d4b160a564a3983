/**
 * `verify --against ORIGINAL --exact` of --scheme and --mlx folders: every quantized weight's
 * stored tensors are what the reference's kernel makes of the original (NVFP4's global scale from
 * the fused weights' originals, MLX's cast to the run's dtype). A folder without kquant's folder
 * manifest (as the reference tools write it) whose scale or global scale is nudged passes every
 * other check, and --exact names the tensor and the bytes. MLX folders are gated by their mode's
 * SQNR floor by default.
 */
import { cpSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMlxQuantize } from "../../../src/pipeline/quantize/mlx-run.js";
import { manifestPathFor } from "../../../src/pipeline/quantize/outputs.js";
import { runVerify, type VerifyReport } from "../../../src/pipeline/read-back/verify.js";
import { tempDir } from "../../support/cli.js";
import { schemeFolder, tinyLlama } from "../../support/llmc-read-back.js";
import { editTensor } from "../tamper.js";

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const failing = (r: VerifyReport) => r.tensors.filter((t) => !t.ok).map((t) => [t.name, [...t.problems, ...t.gate_failures].join(" | ")]);

let source = "";
const folders: Record<string, string> = {};
const MLX: Record<string, { mode: string; bits?: number; groupSize?: number; dtype?: string }> = {
  "mlx-affine": { mode: "affine", bits: 3, groupSize: 32 },
  "mlx-mxfp4": { mode: "mxfp4", dtype: "float16" },
  "mlx-nvfp4": { mode: "nvfp4" },
};
beforeAll(async () => {
  source = await tinyLlama(dir, "bfloat16");
  for (const p of ["W4A16_ASYM", "FP8_BLOCK", "NVFP4A16", "MXFP4A16"]) folders[p] = await schemeFolder(dir, p, "bfloat16");
  for (const [tag, o] of Object.entries(MLX)) {
    folders[tag] = join(dir, tag);
    await runMlxQuantize({ input: source, output: folders[tag], threads: 0, ...o });
  }
});

/** A copy of folder `tag` without kquant's folder manifest (as the reference tool writes it), one stored tensor edited. */
async function forged(tag: string, tensor: string, edit: (d: Buffer) => void): Promise<string> {
  const to = join(dir, `forged-${tag}`);
  cpSync(folders[tag]!, to, { recursive: true });
  rmSync(manifestPathFor(join(to, "model.safetensors.index.json")));
  await editTensor(join(to, "model.safetensors"), tensor, edit);
  return to;
}

describe("verify --exact of --scheme and --mlx folders", () => {
  for (const tag of ["W4A16_ASYM", "FP8_BLOCK", "NVFP4A16", "MXFP4A16", ...Object.keys(MLX)]) {
    it(`${tag}: a fresh folder's bytes are what the reference's kernel makes of the original`, async () => {
      const r = await runVerify(folders[tag]!, { against: source, exact: true, threads: 0 });
      expect(failing(r)).toEqual([]);
      expect(r.tensors.filter((t) => t.mode !== "passthrough").length).toBeGreaterThan(0);
    });
  }

  it.each([
    ["NVFP4A16", "model.layers.0.self_attn.k_proj.weight_global_scale", "model.layers.0.self_attn.k_proj.weight", "global"],
    ["MXFP4A16", "model.layers.0.mlp.up_proj.weight_scale", "model.layers.0.mlp.up_proj.weight", "e8m0"],
    ["mlx-affine", "model.layers.0.mlp.up_proj.scales", "model.layers.0.mlp.up_proj.weight", "ulp"],
  ])("%s: %s nudged passes the other checks, --exact names it", async (tag, tensor, weight, kind) => {
    const path = await forged(tag, tensor, (d) => {
      if (kind === "global") d.writeFloatLE(d.readFloatLE(0) * 1.0001, 0);
      else if (kind === "e8m0") d[3] = d[3]! - 1;
      else d.writeUInt16LE(d.readUInt16LE(6) + 1, 6);
    });
    expect(failing(await runVerify(path, { against: source, threads: 0 }))).toEqual([]);
    const r = await runVerify(path, { against: source, exact: true, threads: 0 });
    expect(r.ok).toBe(false);
    const [name, problem] = failing(r)[0]!;
    expect(name).toBe(weight);
    expect(problem).toMatch(new RegExp(`^tensor "${tensor.replaceAll(".", "\\.")}": \\d+ of \\d+ byte\\(s\\) differ from what`));
  });
});

describe("the MLX modes' default SQNR floor", () => {
  it("verify --against (no threshold flag) gates an MLX weight by its mode's floor: scales doubled fail it", async () => {
    // bfloat16 2.0 is 0x4000: doubling a bfloat16 adds 1 to its exponent field (0x0080).
    const path = await forged("mlx-affine", "model.layers.0.mlp.up_proj.scales", (d) => {
      for (let i = 0; i < d.length; i += 2) d.writeUInt16LE(d.readUInt16LE(i) + 0x80, i);
    });
    const r = await runVerify(path, { against: source, threads: 0 });
    const t = r.tensors.find((x) => x.name === "model.layers.0.mlp.up_proj.weight")!;
    expect(t.problems).toEqual([]);
    expect(t.metrics!.sqnrDb).toBeLessThan(6);
    expect(t.gate_failures.join(" ")).toMatch(/SQNR/);
    expect(r.ok).toBe(false);
  });
});
