import { copyFile, mkdtemp, readFile, rm, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KquantError } from "../../../src/errors.js";
import { rulesFromFlags } from "../../../src/plan/from-flags.js";
import { runQuantize } from "../../../src/pipeline/quantize/run-quantize.js";
import { runVerify, type VerifyReport } from "../../../src/pipeline/read-back/verify.js";
import { writeShardIndex } from "../../../src/formats/safetensors-writer.js";
import { editTensor, fixStoredHash, ODD_TENSORS, writeGaussianCheckpoint } from "../tamper.js";

let dir: string;
let source: string;
const outputs: Record<string, string> = {};

const TENSORS = ODD_TENSORS;

async function quantize(tag: string, flags: Parameters<typeof rulesFromFlags>[0]): Promise<string> {
  const output = join(dir, `q.${tag}.safetensors`);
  await runQuantize({ input: source, output, rules: rulesFromFlags(flags), tag, options: {}, quiet: true });
  return output;
}

/** A fresh copy of a quantized output to damage. */
async function copyOf(tag: string): Promise<string> {
  const path = join(dir, `damaged.${tag}.${Math.random().toString(36).slice(2)}.safetensors`);
  await copyFile(outputs[tag]!, path);
  return path;
}

const failing = (r: VerifyReport) => Object.fromEntries(r.tensors.filter((t) => !t.ok).map((t) => [t.name, t.problems.join(" | ")]));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kquant-verify-"));
  source = join(dir, "source.safetensors");
  await writeGaussianCheckpoint(source, TENSORS);
  outputs.int8 = await quantize("int8", { mode: "int8" });
  outputs.int4 = await quantize("int4", { mode: "int4" });
  outputs.grouped = await quantize("grouped", { mode: "int4", blockSize: 5 });
  outputs.float8 = await quantize("float8", { mode: "float8" });
  outputs.e5m2 = await quantize("e5m2", { mode: "float8", float8Kind: "e5m2" });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("runVerify on fresh outputs", () => {
  for (const tag of ["int8", "int4", "grouped", "float8", "e5m2"]) {
    it(`${tag}: structure, hashes and the comparison with the original all pass`, async () => {
      const r = await runVerify(outputs[tag]!, { against: source });
      expect(failing(r)).toEqual({});
      expect(r.ok).toBe(true);
      expect(r.summary.quantized).toBe(2);
      expect(r.summary.passthrough).toBe(1);
      expect(r.summary.hashes_checked).toBeGreaterThanOrEqual(5);
      for (const t of r.tensors.filter((t) => t.mode !== "passthrough")) {
        expect(t.metrics!.count).toBe(TENSORS.find((x) => x.name === t.name)!.shape.reduce((a, b) => a * b));
        expect(t.metrics!.cosine).toBeGreaterThan(0.98);
      }
    });
  }

  it("int8 on gaussian weights keeps SQNR above 30 dB; int4 is clearly worse", async () => {
    const int8 = await runVerify(outputs.int8!, { against: source });
    const int4 = await runVerify(outputs.int4!, { against: source });
    expect(int8.summary.min_sqnr_db!).toBeGreaterThan(30);
    expect(int4.summary.min_sqnr_db!).toBeLessThan(int8.summary.min_sqnr_db! - 15);
  });

  it("thresholds fail the tensors that miss them, and only with an original", async () => {
    const r = await runVerify(outputs.int4!, { against: source, minSqnr: 99 });
    expect(r.ok).toBe(false);
    expect(r.tensors.filter((t) => !t.ok).map((t) => t.name).sort()).toEqual(["w.odd", "w.tall"]);
    expect(r.tensors.find((t) => t.name === "w.odd")!.gate_failures[0]).toMatch(/SQNR .* dB < 99/);
    const cos = await runVerify(outputs.int4!, { against: source, minCosine: 0.9, maxAbsError: 1 });
    expect(cos.ok).toBe(true);
    await expect(runVerify(outputs.int4!, { minSqnr: 10 })).rejects.toThrow(/--against/);
  });
});

describe("runVerify finds damage", () => {
  it("a flipped byte in stored values is named by its hash", async () => {
    const path = await copyOf("int8");
    await editTensor(path, "w.tall", (d) => {
      d[17] = d[17]! ^ 0x01;
    });
    const r = await runVerify(path);
    expect(Object.keys(failing(r))).toEqual(["w.tall"]);
    expect(failing(r)["w.tall"]).toMatch(/values tensor "w.tall": xxh3-128 hash differs/);
  });

  it("a flipped byte in a scale is named by its hash", async () => {
    const path = await copyOf("grouped");
    await editTensor(path, "w.odd_scale", (d) => {
      d[2] = d[2]! ^ 0x80;
    });
    expect(failing(await runVerify(path))["w.odd"]).toMatch(/scale tensor "w.odd_scale": xxh3-128 hash differs/);
  });

  it("a negative scale with its hash fixed up is caught by meaning", async () => {
    const path = await copyOf("int8");
    await editTensor(path, "w.odd_scale", (d) => d.writeFloatLE(-3.5, 4 * 5));
    await fixStoredHash(path, "w.odd_scale");
    const problems = failing(await runVerify(path));
    expect(problems["w.odd"]).toMatch(/scale "w.odd_scale": 1 of 12 scale value\(s\) are not finite and positive \(first at index 5: -3.5\)/);
    expect(problems["w.odd"]).not.toMatch(/hash/);
  });

  it("a NaN float8 scale with its hash fixed up is caught", async () => {
    const path = await copyOf("float8");
    await editTensor(path, "w.tall_scale", (d) => d.writeFloatLE(NaN, 0));
    await fixStoredHash(path, "w.tall_scale");
    expect(failing(await runVerify(path))["w.tall"]).toMatch(/not finite and positive/);
  });

  it("an int8 code outside the value range (-128) is caught", async () => {
    const path = await copyOf("int8");
    await editTensor(path, "w.tall", (d) => d.writeInt8(-128, 9));
    await fixStoredHash(path, "w.tall");
    expect(failing(await runVerify(path))["w.tall"]).toMatch(/1 code\(s\) outside \[-127, 127\] \(first at index 9: -128\)/);
  });

  it("a non-zero int4 padding nibble is caught (33 columns pack into 17 bytes)", async () => {
    const path = await copyOf("int4");
    // Row 2's last packed byte holds column 32 in its low nibble and padding in its high nibble.
    await editTensor(path, "w.odd", (d) => {
      d[2 * 17 + 16] = (d[2 * 17 + 16]! & 0x0f) | 0x30;
    });
    await fixStoredHash(path, "w.odd");
    expect(failing(await runVerify(path))["w.odd"]).toMatch(/1 padding nibble\(s\) are not zero \(orig_len 33 is odd; first at byte 50\)/);
  });

  it("a grouped zero point out of range is caught", async () => {
    const path = await copyOf("grouped");
    await editTensor(path, "w.tall_zero", (d) => d.writeInt8(100, 3));
    await fixStoredHash(path, "w.tall_zero");
    expect(failing(await runVerify(path))["w.tall"]).toMatch(/zero "w.tall_zero": 1 code\(s\) outside \[-8, 7\]/);
  });

  it("a NaN float8 code is caught", async () => {
    const path = await copyOf("float8");
    await editTensor(path, "w.odd", (d) => {
      d[4] = 0xff;
    });
    await fixStoredHash(path, "w.odd");
    expect(failing(await runVerify(path))["w.odd"]).toMatch(/1 NaN code\(s\) \(first at index 4: 0xff\)/);
  });

  it("an original that is not the source is named by its hash", async () => {
    const other = join(dir, "other.safetensors");
    await writeGaussianCheckpoint(other, TENSORS, 99);
    const r = await runVerify(outputs.int8!, { against: other });
    expect(Object.keys(failing(r)).sort()).toEqual(["bias", "w.odd", "w.tall"]);
    expect(failing(r)["bias"]).toMatch(/original's xxh3-128 hash differs/);
  });

  it("a truncated file is unreadable input (exit code 2), not a failed check", async () => {
    const path = await copyOf("int8");
    const size = (await readFile(path)).length;
    await truncate(path, size - 10);
    const err = await runVerify(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KquantError);
    expect((err as KquantError).exitCode).toBe(2);
    expect((err as KquantError).message).toContain(path);
  });

  it("a file without a manifest is refused", async () => {
    await expect(runVerify(source)).rejects.toThrow(/no kquant manifest/);
  });
});

describe("runVerify on a sharded output", () => {
  it("merges the shards' manifests and names a damaged tensor in the second shard", async () => {
    const shards = [join(dir, "s-00001-of-00002.safetensors"), join(dir, "s-00002-of-00002.safetensors")];
    await writeGaussianCheckpoint(shards[0]!, [TENSORS[0]!], 5);
    await writeGaussianCheckpoint(shards[1]!, [TENSORS[1]!, TENSORS[2]!], 6);
    const index = join(dir, "s.safetensors.index.json");
    await writeShardIndex(index, {
      metadata: { total_size: 0 },
      weight_map: { "w.odd": "s-00001-of-00002.safetensors", "w.tall": "s-00002-of-00002.safetensors", bias: "s-00002-of-00002.safetensors" },
    });
    const output = join(dir, "sq.safetensors.index.json");
    await runQuantize({ input: index, output, rules: rulesFromFlags({ mode: "int8" }), tag: "int8", options: {}, quiet: true });
    const fresh = await runVerify(output, { against: index });
    expect(fresh.ok).toBe(true);
    expect(fresh.tensors.map((t) => t.name).sort()).toEqual(["bias", "w.odd", "w.tall"]);
    await editTensor(join(dir, "s-00002-of-00002.int8.safetensors"), "w.tall_scale", (d) => {
      d[0] = d[0]! ^ 1;
    });
    expect(Object.keys(failing(await runVerify(output)))).toEqual(["w.tall"]);
  });
});
