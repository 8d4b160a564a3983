/**
 * The compressed-tensors and MLX layouts, through quantize and dequantize of a model folder:
 * what they write (names, dtypes, shapes, re-encoded bytes), what they refuse, the config, and
 * that reading them back gives kquant's own dequantize (bit for bit for compressed-tensors; MLX
 * within its two-rounding bound). The real loaders are run by test/loaders/run.sh.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import { COMPRESSED_TENSORS_LAYOUT } from "../../src/layouts/compressed-tensors.js";
import { KQUANT_LAYOUT } from "../../src/layouts/kquant.js";
import type { Layout } from "../../src/layouts/layout.js";
import { MLX_LAYOUT } from "../../src/layouts/mlx.js";
import { rulesFromFlags, type QuantFlags } from "../../src/plan/from-flags.js";
import { runDequantize } from "../../src/pipeline/read-back/dequantize.js";
import { runQuantize } from "../../src/pipeline/quantize/run-quantize.js";
import { runVerify } from "../../src/pipeline/read-back/verify.js";
import { tempDir } from "../support/cli.js";
import { modelTensors, writeModelFolder } from "./model-folder.js";

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

async function quantizeFolder(flags: QuantFlags, layout: Layout, tied = false): Promise<{ src: string; out: string; deq: Map<string, Float32Array>; tensors: Map<string, Uint8Array>; dtypes: Map<string, string> }> {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const src = join(dir, "in");
  mkdirSync(src);
  await writeModelFolder(src, false, tied);
  const out = join(dir, `out-${layout.name}`);
  await runQuantize({ input: src, output: out, rules: rulesFromFlags(flags, !!layout.int8Groups), layout, tag: flags.mode, options: {}, quiet: true, threads: 0 });
  const deqPath = join(dir, `deq-${layout.name}.safetensors`);
  await runDequantize({ input: out, output: deqPath, dtype: "f32" });
  const deq = new Map<string, Float32Array>();
  const r = await openTensors(deqPath);
  for (const t of r.tensors) deq.set(t.name, new Float32Array((await r.read(t.name)).slice().buffer));
  await r.close();
  const tensors = new Map<string, Uint8Array>();
  const dtypes = new Map<string, string>();
  const o = await openTensors(out);
  for (const t of o.tensors) {
    tensors.set(t.name, (await o.read(t.name)).slice());
    dtypes.set(t.name, `${t.dtype} [${t.shape}]`);
  }
  await o.close();
  return { src, out, deq, tensors, dtypes };
}

const bitsOf = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
const f32 = (b: Uint8Array) => new Float32Array(b.slice().buffer);
const config = (out: string) => JSON.parse(readFileSync(join(out, "config.json"), "utf8"));

describe("--layout compressed-tensors", () => {
  const modes: [string, QuantFlags][] = [
    ["int8", { mode: "int8" }],
    ["int4", { mode: "int4" }],
    ["int4 g32", { mode: "int4", blockSize: 32 }],
    ["float8 e4m3", { mode: "float8", float8Kind: "e4m3" }],
  ];
  for (const [label, flags] of modes) {
    it(`${label}: reading it back as compressed-tensors does gives kquant's own dequantize bit for bit`, async () => {
      const ct = await quantizeFolder(flags, COMPRESSED_TENSORS_LAYOUT);
      const own = await quantizeFolder(flags, KQUANT_LAYOUT);
      const quantized = [...ct.tensors.keys()].filter((n) => n.endsWith("_scale")).map((n) => n.replace(/_scale$/, ""));
      expect(quantized.length).toBeGreaterThanOrEqual(2);
      for (const name of quantized) expect(bitsOf(ct.deq.get(name)!), name).toEqual(bitsOf(own.deq.get(name)!));
      expect((await runVerify(ct.out, { against: ct.src })).ok).toBe(true);
    });
  }

  it("int8: weight as kquant stores it, weight_scale the reciprocal of kquant's scale, per output row", async () => {
    const ct = await quantizeFolder({ mode: "int8" }, COMPRESSED_TENSORS_LAYOUT);
    const own = await quantizeFolder({ mode: "int8" }, KQUANT_LAYOUT);
    const n = "model.layers.0.self_attn.q_proj";
    expect(ct.dtypes.get(`${n}.weight`)).toBe("I8 [40,64]");
    expect(ct.dtypes.get(`${n}.weight_scale`)).toBe("F32 [40,1]");
    expect(ct.tensors.get(`${n}.weight`)).toEqual(own.tensors.get(`${n}.weight`));
    const s = f32(own.tensors.get(`${n}.weight_scale`)!);
    expect(Array.from(f32(ct.tensors.get(`${n}.weight_scale`)!))).toEqual(Array.from(s, (v) => Math.fround(1 / v)));
  });

  it("grouped int4: packed words, the scale unchanged, zero points + 8 packed along dim 0, the shape", async () => {
    const ct = await quantizeFolder({ mode: "int4", blockSize: 32 }, COMPRESSED_TENSORS_LAYOUT);
    const own = await quantizeFolder({ mode: "int4", blockSize: 32 }, KQUANT_LAYOUT);
    const n = "model.layers.0.self_attn.q_proj";
    expect(ct.dtypes.get(`${n}.weight_packed`)).toBe("I32 [40,8]");
    expect(ct.dtypes.get(`${n}.weight_scale`)).toBe("F32 [40,2]");
    expect(ct.dtypes.get(`${n}.weight_zero_point`)).toBe("I32 [5,2]");
    expect(Array.from(new BigInt64Array(ct.tensors.get(`${n}.weight_shape`)!.slice().buffer))).toEqual([40n, 64n]);
    expect(ct.tensors.get(`${n}.weight_scale`)).toEqual(own.tensors.get(`${n}.weight_scale`));
    // Row 9, group 1: word (9 >> 3 = 1, group 1), nibble 9 & 7 = 1, holds z + 8.
    const z = new Int8Array(own.tensors.get(`${n}.weight_zero`)!.slice().buffer);
    const words = new Uint32Array(ct.tensors.get(`${n}.weight_zero_point`)!.slice().buffer);
    expect((words[1 * 2 + 1]! >>> 4) & 0xf).toBe(z[9 * 2 + 1]! + 8);
    // Values: element (0, 1) is the second nibble of row 0's first word, q + 8.
    const q = own.tensors.get(`${n}.weight`)!;
    const packed = new Uint32Array(ct.tensors.get(`${n}.weight_packed`)!.slice().buffer);
    expect((packed[0]! >>> 4) & 0xf).toBe((((q[0]! >> 4) ^ 8) - 8) + 8);
  });

  it("leaves embeddings, lm_head and what a group cannot divide in float, lists them in ignore, and writes quantization_config", async () => {
    const ct = await quantizeFolder({ mode: "int4", blockSize: 32 }, COMPRESSED_TENSORS_LAYOUT);
    expect(ct.dtypes.get("model.embed_tokens.weight")).toBe("F32 [48,64]");
    expect(ct.dtypes.get("model.layers.0.mlp.odd_proj.weight")).toBe("F32 [24,37]");
    const q = config(ct.out).quantization_config;
    expect(q).toMatchObject({ quant_method: "compressed-tensors", format: "pack-quantized", quantization_status: "compressed" });
    expect(q.ignore).toEqual(["model.embed_tokens", "model.layers.0.mlp.odd_proj", "lm_head"]);
    expect(q.config_groups.group_0).toMatchObject({ targets: ["Linear"], weights: { num_bits: 4, type: "int", symmetric: false, strategy: "group", group_size: 32 } });
    expect(config(ct.out).model_type).toBe("llama");
  });

  it("tied embeddings (no lm_head.weight in the file): lm_head is still in ignore, or transformers would initialise it anew", async () => {
    for (const flags of [{ mode: "int8" }, { mode: "int4" }] as QuantFlags[]) {
      const ct = await quantizeFolder(flags, COMPRESSED_TENSORS_LAYOUT, true);
      expect(ct.tensors.has("lm_head.weight")).toBe(false);
      expect(config(ct.out).quantization_config.ignore).toEqual(["model.embed_tokens", "lm_head"]);
    }
  });

  it("int4 per channel pads a row of 37 codes to 5 words; float8 per tensor keeps a [1] scale", async () => {
    const ct = await quantizeFolder({ mode: "int4" }, COMPRESSED_TENSORS_LAYOUT);
    expect(ct.dtypes.get("model.layers.0.mlp.odd_proj.weight_packed")).toBe("I32 [24,5]");
    const f8 = await quantizeFolder({ mode: "float8", float8Kind: "e4m3" }, COMPRESSED_TENSORS_LAYOUT);
    expect(f8.dtypes.get("model.layers.0.mlp.odd_proj.weight_scale")).toBe("F32 [1]");
    expect(config(f8.out).quantization_config.config_groups.group_0.weights).toMatchObject({ type: "float", num_bits: 8, strategy: "tensor" });
  });

  it("refuses float8 e5m2 (compressed-tensors holds e4m3 only), naming the tensor", async () => {
    await expect(quantizeFolder({ mode: "float8", float8Kind: "e5m2" }, COMPRESSED_TENSORS_LAYOUT)).rejects.toThrow(/e4m3 only/);
  });
});

describe("--layout mlx", () => {
  /** |mlx - kquant| <= 2^-22 (|scales u| + |biases|): MLX's two roundings and the bias's one against Keras's one. */
  function withinBound(mlx: Float32Array, own: Float32Array, bound: Float32Array): number {
    let worst = 0;
    for (let i = 0; i < mlx.length; i++) worst = Math.max(worst, Math.abs(mlx[i]! - own[i]!) / (2 ** -22 * bound[i]!));
    return worst;
  }

  for (const [label, flags, ownFlags] of [
    ["int4 g32", { mode: "int4", blockSize: 32 }, { mode: "int4", blockSize: 32 }],
    ["int8 g64", { mode: "int8", blockSize: 64 }, { mode: "int8" }],
  ] as [string, QuantFlags, QuantFlags][]) {
    it(`${label}: read back as mx.dequantize computes it, within the two-rounding bound of kquant's own dequantize`, async () => {
      const mlx = await quantizeFolder(flags, MLX_LAYOUT);
      const own = await quantizeFolder(ownFlags, KQUANT_LAYOUT);
      const bits = flags.mode === "int8" ? 8 : 4;
      const group = flags.blockSize!;
      let checked = 0;
      for (const t of modelTensors()) {
        const base = t.name.replace(/\.weight$/, "");
        if (!mlx.tensors.has(`${base}.scales`)) continue;
        const [out, inF] = t.shape as [number, number];
        expect(mlx.dtypes.get(t.name)).toBe(`U32 [${out},${(inF * bits) / 32}]`);
        expect(mlx.dtypes.get(`${base}.biases`)).toBe(`F32 [${out},${inF / group}]`);
        const s = f32(mlx.tensors.get(`${base}.scales`)!);
        const b = f32(mlx.tensors.get(`${base}.biases`)!);
        const w = new Uint32Array(mlx.tensors.get(t.name)!.slice().buffer);
        const bound = new Float32Array(out * inF);
        const perWord = 32 / bits;
        for (let r = 0; r < out; r++) {
          for (let c = 0; c < inF; c++) {
            const u = (w[r * (inF / perWord) + Math.floor(c / perWord)]! >>> ((c % perWord) * bits)) & ((1 << bits) - 1);
            const j = r * (inF / group) + Math.floor(c / group);
            bound[r * inF + c] = Math.abs(s[j]! * u) + Math.abs(b[j]!);
            expect(mlx.deq.get(t.name)![r * inF + c]).toBe(Math.fround(Math.fround(s[j]! * u) + b[j]!));
          }
        }
        expect(withinBound(mlx.deq.get(t.name)!, own.deq.get(t.name)!, bound)).toBeLessThanOrEqual(1);
        if (bits === 8) expect(Array.from(b)).toEqual(Array.from(s, (v) => -128 * v));
        checked++;
      }
      // Embeddings and lm_head are quantized too (mlx_lm does); only the 37-wide weight stays float.
      expect(checked).toBe(4);
      expect(mlx.dtypes.get("model.layers.0.mlp.odd_proj.weight")).toBe("F32 [24,37]");
      expect(config(mlx.out).quantization).toEqual({ group_size: group, bits, mode: "affine" });
      expect((await runVerify(mlx.out, { against: mlx.src })).ok).toBe(true);
    });
  }

  it("refuses float8 and group sizes MLX does not have", async () => {
    await expect(quantizeFolder({ mode: "float8", float8Kind: "e4m3" }, MLX_LAYOUT)).rejects.toThrow(/int4 and int8 only/);
    await expect(quantizeFolder({ mode: "int4", blockSize: 16 }, MLX_LAYOUT)).rejects.toThrow(/32, 64, 128/);
  });
});
