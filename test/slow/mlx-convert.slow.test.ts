/**
 * kquant's MLX kernels against the real mlx_lm.convert (0.32.2, mlx[cpu] 0.32.4): a tiny random
 * Llama (test/mlx-convert/convert.py, made at test time) converted in every affine width × group
 * size, mxfp4, mxfp8 and nvfp4, under each --dtype; every tensor mlx_lm wrote must be what the
 * kernels make from the float source cast to that dtype, byte for byte, the float ones the cast
 * itself, and config.json's `quantization` mlx_lm's {group_size, bits, mode}. Also pins which
 * tensors mlx_lm quantizes (Linear and Embedding weights whose last dimension the group divides).
 * The sources are a float32 folder and the same weights in bfloat16 (torch_dtype bfloat16).
 *
 * Then the built CLI (`npm run build`, node bin/kquant.js quantize SRC --mlx MODE …) converts the
 * same source with the same options, and every tensor it writes (name, dtype, shape, bytes) and
 * config.json's `quantization` / `quantization_config` equal mlx_lm.convert's, and so do the files it
 * writes (its manifest aside) and, byte for byte, the index and README.md; and `kquant dequantize`
 * of each mlx_lm folder equals the real mx.dequantize (convert.py writes it), byte for byte.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import type { TensorReader } from "../../src/formats/types.js";
import { mlxAffineQuantize } from "../../src/quant/mlx/affine.js";
import { storeAs, valuesOf, type MlxFloat } from "../../src/quant/mlx/floats.js";
import { MLX_FP_MODES, mlxFpQuantize, type MlxFpMode } from "../../src/quant/mlx/fp.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

interface Case {
  source: string;
  folder: string;
  /** mx.dequantize of each quantized weight (affine: the scales' dtype; fp modes: float32). */
  dequantized: string;
  mode: "affine" | MlxFpMode;
  bits: number | null;
  group_size: number | null;
  /** mlx_lm's --dtype (null: config.json's torch_dtype). */
  q_dtype: MlxFloat | null;
  /** The dtype the float tensors end in. */
  dtype: MlxFloat;
}

/** kquant's folder manifest, beside the index (src/pipeline/folder-manifest.ts). */
const MANIFEST = "model.safetensors.index.json.json";

let work = "";
let cases: Case[] = [];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "kquant-mlx-convert-"));
  const python = execFileSync("bash", [join(root, "scripts/pyenv.sh"), "mlx"], { encoding: "utf8" }).trim();
  execFileSync(python, [join(root, "test/mlx-convert/convert.py"), work], {
    env: { ...process.env, HF_HUB_OFFLINE: "1", TRANSFORMERS_OFFLINE: "1", PYTHONWARNINGS: "ignore" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  cases = (JSON.parse(readFileSync(join(work, "cases.json"), "utf8")) as { cases: Case[] }).cases;
}, 10 * 60_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const DTYPE_TAG: Record<MlxFloat, string> = { float32: "F32", float16: "F16", bfloat16: "BF16" };

/** A source tensor's values as float32 numbers (F32 or BF16 sources). */
async function valuesIn(reader: TensorReader, name: string): Promise<Float32Array> {
  const b = (await reader.read(name)).slice();
  const dtype = reader.tensors.find((t) => t.name === name)!.dtype;
  if (dtype === "F32") return new Float32Array(b.buffer);
  expect(dtype).toBe("BF16");
  return valuesOf(new Uint16Array(b.buffer), "bfloat16");
}

describe("mlx_lm.convert's folders equal kquant's MLX kernels on the same source, byte for byte", () => {
  it("converts in every mode, width, group size and dtype", async () => {
    expect(cases.length).toBe(37);
    for (const c of cases) {
      const src = await openTensors(c.source);
      try {
        const out = await openTensors(c.folder);
        try {
          const mode = c.mode;
          const group = c.group_size ?? (mode === "affine" ? 64 : MLX_FP_MODES[mode].groupSize);
          const bits = c.bits ?? (mode === "affine" ? 4 : MLX_FP_MODES[mode].bits);
          const config = JSON.parse(readFileSync(join(c.folder, "config.json"), "utf8")) as Record<string, unknown>;
          const params = { group_size: group, bits, mode };
          expect(config.quantization, c.folder).toEqual(params);
          expect(config.quantization_config, c.folder).toEqual(params);
          const names = new Set(out.tensors.map((t) => t.name));
          const expected = new Set<string>();
          for (const t of src.tensors) {
            const base = t.name.replace(/\.weight$/, "");
            const quantizable = t.name.endsWith(".weight") && t.shape.length === 2 && !t.name.includes("norm") && t.shape[1]! % group === 0;
            const x = storeAs(await valuesIn(src, t.name), c.dtype);
            const label = `${c.folder}: ${t.name}`;
            if (!quantizable) {
              expected.add(t.name);
              const info = out.tensors.find((o) => o.name === t.name)!;
              expect(info?.dtype, label).toBe(DTYPE_TAG[c.dtype]);
              expect(bytes(await out.read(t.name)).equals(bytes(x)), label).toBe(true);
              continue;
            }
            const w = { dtype: c.dtype, shape: t.shape, data: x };
            const got = async (n: string) => bytes(await out.read(`${base}.${n}`));
            if (mode === "affine") {
              const q = mlxAffineQuantize(w, bits, group);
              expect((await got("weight")).equals(bytes(q.wq)), `${label} codes`).toBe(true);
              expect((await got("scales")).equals(bytes(q.scales.data)), `${label} scales`).toBe(true);
              expect((await got("biases")).equals(bytes(q.biases.data)), `${label} biases`).toBe(true);
              expected.add(`${base}.biases`);
            } else {
              const q = mlxFpQuantize(w, mode);
              expect((await got("weight")).equals(bytes(q.wq)), `${label} codes`).toBe(true);
              expect((await got("scales")).equals(bytes(q.scales)), `${label} scales`).toBe(true);
            }
            expected.add(`${base}.weight`);
            expected.add(`${base}.scales`);
          }
          expect([...names].sort(), c.folder).toEqual([...expected].sort());
        } finally {
          await out.close();
        }
      } finally {
        await src.close();
      }
    }
  }, 10 * 60_000);
});

/** Every tensor of a folder's weights: dtype, shape and bytes by name. */
async function tensorsOf(folder: string): Promise<Map<string, { dtype: string; shape: number[]; bytes: Buffer }>> {
  const r = await openTensors(folder);
  try {
    const out = new Map<string, { dtype: string; shape: number[]; bytes: Buffer }>();
    for (const t of r.tensors) out.set(t.name, { dtype: t.dtype, shape: t.shape, bytes: Buffer.from(await r.read(t.name)) });
    return out;
  } finally {
    await r.close();
  }
}

describe("the built CLI's --mlx writes what mlx_lm.convert writes from the same folder", () => {
  beforeAll(() => {
    execFileSync("npm", ["run", "build"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  }, 5 * 60_000);

  it("in every mode, width, group size and dtype, from float32 and bfloat16 sources", async () => {
    expect(cases.length).toBe(37);
    expect(new Set(cases.map((c) => c.source)).size).toBe(2);
    for (const c of cases) {
      const out = join(work, `kquant-${c.folder.split("/").pop()!}`);
      const args = ["quantize", c.source, "--mlx", c.mode, "-o", out, "--quiet"];
      if (c.bits !== null) args.push("--bits", String(c.bits));
      if (c.group_size !== null) args.push("--block-size", String(c.group_size));
      if (c.q_dtype !== null) args.push("--dtype", c.q_dtype);
      execFileSync(process.execPath, [join(root, "bin/kquant.js"), ...args], { stdio: ["ignore", "ignore", "inherit"] });
      const [theirs, ours] = [await tensorsOf(c.folder), await tensorsOf(out)];
      expect([...ours.keys()].sort(), out).toEqual([...theirs.keys()].sort());
      for (const [name, t] of theirs) {
        const o = ours.get(name)!;
        expect({ dtype: o.dtype, shape: o.shape }, `${out}: ${name}`).toEqual({ dtype: t.dtype, shape: t.shape });
        expect(o.bytes.equals(t.bytes), `${out}: ${name} bytes`).toBe(true);
      }
      const config = (dir: string) => JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
      const [a, b] = [config(c.folder), config(out)];
      expect(b.quantization, out).toEqual(a.quantization);
      expect(b.quantization_config, out).toEqual(a.quantization_config);
      // config.json's whole content (mlx_lm sorts the keys and indents by 4; kquant keeps the source's order)
      expect(b, out).toEqual(a);
      // Every file mlx_lm wrote, and kquant's manifest beside the index (docs/mlx-reference.md)
      expect(readdirSync(out).sort(), out).toEqual([...readdirSync(c.folder), MANIFEST].sort());
      // The index (total_size, total_parameters, weight map) and the model card, byte for byte
      for (const f of ["model.safetensors.index.json", "README.md"]) expect(readFileSync(join(out, f)).equals(readFileSync(join(c.folder, f))), `${out}: ${f}`).toBe(true);
      // tokenizer_config.json is re-saved by transformers (it adds is_local, local_files_only); kquant copies the source's
      expect(readFileSync(join(out, "tokenizer.json")).equals(readFileSync(join(c.folder, "tokenizer.json"))), out).toBe(true);
      rmSync(out, { recursive: true });
    }
  }, 10 * 60_000);

  it("reads mlx_lm.convert's folders back through kquant dequantize exactly as mx.dequantize does", async () => {
    const OUT: Record<MlxFloat, string> = { float32: "f32", float16: "f16", bfloat16: "bf16" };
    for (const c of cases) {
      const back = join(work, `back-${c.folder.split("/").pop()!}.safetensors`);
      const dtype = c.mode === "affine" ? c.dtype : "float32";
      execFileSync(process.execPath, [join(root, "bin/kquant.js"), "dequantize", c.folder, "-o", back, "--dtype", OUT[dtype], "--quiet"], { stdio: ["ignore", "ignore", "inherit"] });
      const [theirs, ours, folder] = [await tensorsOf(c.dequantized), await tensorsOf(back), await tensorsOf(c.folder)];
      expect(theirs.size, c.dequantized).toBeGreaterThan(0);
      for (const [name, t] of theirs) {
        const o = ours.get(name)!;
        expect({ dtype: o?.dtype, shape: o?.shape }, `${back}: ${name}`).toEqual({ dtype: t.dtype, shape: t.shape });
        expect(o.bytes.equals(t.bytes), `${back}: ${name} bytes`).toBe(true);
      }
      // What stays float is copied; scales and biases are consumed.
      const kept = [...folder.keys()].filter((n) => !theirs.has(n) && !/\.(scales|biases)$/.test(n));
      expect([...ours.keys()].sort(), back).toEqual([...theirs.keys(), ...kept].sort());
      for (const n of kept) expect(ours.get(n)!.bytes.equals(folder.get(n)!.bytes), `${back}: ${n}`).toBe(true);
      rmSync(back);
    }
  }, 10 * 60_000);
});
