import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import { errorMetrics } from "../../src/quant/error-metrics.js";
import { floatValues } from "../../src/pipeline/float-values.js";
import { writeGaussianCheckpoint } from "../pipeline/tamper.js";
import { DEMO, runCli as kquant } from "../support/cli.js";

let dir: string;
let gaussian: string;

const SHAPES = [
  { name: "layer.0.weight", shape: [96, 80] },
  { name: "layer.1.weight", shape: [31, 45] },
  { name: "layer.1.bias", shape: [45] },
];

async function tensorsOf(path: string): Promise<Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>> {
  const r = await openTensors(path);
  try {
    const out = new Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>();
    for (const t of r.tensors) out.set(t.name, { dtype: t.dtype, shape: t.shape, bytes: await r.read(t.name) });
    return out;
  } finally {
    await r.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kquant-dequantize-"));
  gaussian = join(dir, "gaussian.safetensors");
  await writeGaussianCheckpoint(gaussian, SHAPES, 42);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function roundTrip(flags: string[], tag: string, out = `${tag}.dq.safetensors`, extra: string[] = []) {
  const q = join(dir, `${tag}.safetensors`);
  expect((await kquant("quantize", gaussian, ...flags, "-o", q, "-q", "-f")).code).toBe(0);
  const dq = join(dir, out);
  const r = await kquant("dequantize", q, "-o", dq, "-f", ...extra);
  expect(r.code, r.stderr).toBe(0);
  return { q, dq, stdout: r.stdout };
}

describe("kquant dequantize", () => {
  it("int8 round trip of gaussian weights: same names and shapes, F32, SQNR > 30 dB", async () => {
    const { dq, stdout } = await roundTrip(["--int8"], "int8");
    expect(stdout).toMatch(/2 tensor\(s\) to F32, 1 kept as they were/);
    const original = await tensorsOf(gaussian);
    const back = await tensorsOf(dq);
    expect([...back.keys()]).toEqual([...original.keys()]);
    for (const { name, shape } of SHAPES) {
      const b = back.get(name)!;
      expect(b.dtype).toBe("F32");
      expect(b.shape).toEqual(shape);
      const m = errorMetrics(floatValues("F32", original.get(name)!.bytes)!, floatValues("F32", b.bytes)!);
      if (name.endsWith("bias")) expect(Buffer.compare(b.bytes, original.get(name)!.bytes)).toBe(0);
      else expect(m.sqnrDb).toBeGreaterThan(30);
    }
  });

  it("int4, grouped int4 and float8 round trips stay close, in their order of precision", async () => {
    const sqnr = async (flags: string[], tag: string) => {
      const { dq } = await roundTrip(flags, tag);
      const a = floatValues("F32", (await tensorsOf(gaussian)).get("layer.0.weight")!.bytes)!;
      const b = floatValues("F32", (await tensorsOf(dq)).get("layer.0.weight")!.bytes)!;
      return errorMetrics(a, b).sqnrDb;
    };
    const int4 = await sqnr(["--int4"], "int4");
    const grouped = await sqnr(["--int4", "--block-size", "16"], "grouped");
    const e4m3 = await sqnr(["--float8"], "e4m3");
    const int8 = await sqnr(["--int8"], "int8b");
    expect(int4).toBeGreaterThan(12);
    expect(grouped).toBeGreaterThan(int4);
    expect(e4m3).toBeGreaterThan(grouped);
    expect(int8).toBeGreaterThan(e4m3);
  });

  it("writes .npz that the npz reader opens, with --dtype f16", async () => {
    const { dq } = await roundTrip(["--int8"], "npz", "weights.npz", ["--dtype", "f16"]);
    const back = await tensorsOf(dq);
    expect(back.get("layer.1.weight")!.dtype).toBe("F16");
    expect(back.get("layer.1.weight")!.shape).toEqual([31, 45]);
    expect(back.get("layer.1.bias")!.dtype).toBe("F32"); // passthrough unchanged
    const f32 = await tensorsOf(join(dir, "int8.dq.safetensors"));
    const viaF32 = floatValues("F32", f32.get("layer.1.weight")!.bytes)!;
    const viaF16 = floatValues("F16", back.get("layer.1.weight")!.bytes)!;
    expect(errorMetrics(viaF32, viaF16).sqnrDb).toBeGreaterThan(60); // only float16 rounding apart
  });

  it("bf16 output to safetensors; bf16 to .npz is refused", async () => {
    const { dq } = await roundTrip(["--int8"], "bf16", "bf16.dq.safetensors", ["--dtype", "bf16"]);
    expect((await tensorsOf(dq)).get("layer.0.weight")!.dtype).toBe("BF16");
    const r = await kquant("dequantize", join(dir, "bf16.safetensors"), "-o", join(dir, "x.npz"), "--dtype", "bf16");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("bfloat16");
  });

  it("is deterministic and refuses to overwrite without --force", async () => {
    const q = join(dir, "demo.int4.safetensors");
    expect((await kquant("quantize", DEMO, "--int4", "-o", q, "-q")).code).toBe(0);
    const a = join(dir, "a.safetensors");
    const b = join(dir, "b.safetensors");
    expect((await kquant("dequantize", q, "-o", a, "-q")).code).toBe(0);
    expect((await kquant("dequantize", q, "-o", b, "-q")).code).toBe(0);
    expect(Buffer.compare(await readFile(a), await readFile(b))).toBe(0);
    const again = await kquant("dequantize", q, "-o", a);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("already exists");
    // Scale tensors are consumed; the demo's names come back; its metadata too.
    const back = await openTensors(a);
    try {
      expect(back.tensors.map((t) => t.name).filter((n) => n.endsWith("_scale"))).toEqual([]);
      expect(back.tensors).toHaveLength(13);
      expect(back.metadata).toMatchObject({ format: "pt", model_type: "llama", kquant_dequantized_from: "demo.int4.safetensors" });
    } finally {
      await back.close();
    }
  });

  it("refuses a file that is not a kquant output", async () => {
    const r = await kquant("dequantize", DEMO, "-o", join(dir, "nope.safetensors"));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no kquant manifest");
  });
});
