/**
 * --layout keras writes exactly the variables quantizeDenseKernel (pinned to Keras's own
 * Dense.quantize by fixtures/keras/vectors/dense.json) gives for each 2-D tensor of the demo, under
 * Keras's names and shapes; verify and dequantize read it back; float8 is refused up front.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import { floatValues } from "../../src/pipeline/float-values.js";
import { quantizeDenseKernel } from "../../src/quant/dense.js";
import { byteView } from "../../src/quant/tensor.js";
import { DEMO, runCli, tempDir } from "../support/cli.js";
import { editTensor, fixStoredHash, writeGaussianCheckpoint } from "../pipeline/tamper.js";

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const configs: { flags: string[]; blockSize: number | null }[] = [
  { flags: ["--int8"], blockSize: null },
  { flags: ["--int4"], blockSize: null },
  { flags: ["--int4", "--block-size", "32"], blockSize: 32 },
  { flags: ["--int4", "--block-size", "100"], blockSize: 100 },
];

describe("--layout keras", () => {
  for (const [i, c] of configs.entries()) {
    it(`${c.flags.join(" ")}: every 2-D tensor is Dense.quantize's variables, bytes, shapes and names`, async () => {
      const out = join(dir, `k${i}.safetensors`);
      const r = await runCli("quantize", DEMO, ...c.flags, "--layout", "keras", "-o", out, "--quiet");
      expect(r.code, r.stderr).toBe(0);
      const src = await openTensors(DEMO);
      const got = await openTensors(out);
      try {
        const infos = new Map(got.tensors.map((t) => [t.name, t]));
        let kernels = 0;
        for (const t of src.tensors) {
          if (t.shape.length !== 2) continue;
          kernels++;
          const x = floatValues(t.dtype, await src.read(t.name))!;
          const mode = c.flags[0] === "--int8" ? "int8" : "int4";
          const want = quantizeDenseKernel(x, [t.shape[0]!, t.shape[1]!], { mode, blockSize: mode === "int4" ? c.blockSize : null });
          type Variable = [string, { shape: number[]; data: ArrayBufferView }];
          const vars: Variable[] = [["", want.kernel], ["_scale", want.kernel_scale]];
          if (want.kernel_zero) vars.push(["_zero", want.kernel_zero]);
          if (want.g_idx) vars.push(["_g_idx", want.g_idx]);
          for (const [suffix, v] of vars) {
            const name = t.name + suffix;
            expect(infos.get(name)?.shape, name).toEqual(v.shape);
            expect(Buffer.from(await got.read(name)).equals(Buffer.from(byteView(v.data as Int8Array))), name).toBe(true);
          }
        }
        expect(kernels).toBe(9);
        // The manifest names every variable it writes: values, scale, zero and g_idx alike.
        const manifest = JSON.parse(readFileSync(`${out}.json`, "utf8"));
        const rec = manifest.tensors["model.layers.0.mlp.up_proj.weight"];
        expect(rec.values).toBe("model.layers.0.mlp.up_proj.weight");
        expect(rec.scale).toBe("model.layers.0.mlp.up_proj.weight_scale");
        expect(rec.g_idx).toBe(c.blockSize === null ? undefined : "model.layers.0.mlp.up_proj.weight_g_idx");
      } finally {
        await src.close();
        await got.close();
      }
      const v = await runCli("verify", out, "--against", DEMO);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      const d = await runCli("dequantize", out, "-o", join(dir, `d${i}.safetensors`));
      expect(d.code, d.stderr).toBe(0);
    });
  }

  it("refuses float8 with one line and writes nothing", async () => {
    const out = join(dir, "f8.safetensors");
    const r = await runCli("quantize", DEMO, "--float8", "--layout", "keras", "-o", out);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/--layout keras: Keras's Dense.quantize stores no float8 kernel/);
    expect(existsSync(out)).toBe(false);
  });

  it("verify finds a g_idx that is not floor(i / B), even with its hash fixed up", async () => {
    const src = join(dir, "one.safetensors");
    await writeGaussianCheckpoint(src, [{ name: "dense.kernel", shape: [40, 8] }]);
    const out = join(dir, "one.keras.safetensors");
    expect((await runCli("quantize", src, "--int4", "--block-size", "16", "--layout", "keras", "-o", out, "--quiet")).code).toBe(0);
    const name = "dense.kernel_g_idx";
    await editTensor(out, name, (data) => data.writeFloatLE(0, 4 * 20));
    await fixStoredHash(out, name);
    const v = await runCli("verify", out);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/tensor "dense.kernel_g_idx" is not what the keras layout makes/);
  });
});
