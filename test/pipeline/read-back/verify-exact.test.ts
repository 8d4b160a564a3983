/**
 * `verify --against ORIGINAL --exact` (issue #22 item 8b): every quantized tensor's stored bytes
 * are re-derived from the original by the mode's kernel with the manifest's options. A scale
 * nudged within reason, its hash recomputed, passes every other check (hashes, contents, the
 * default SQNR floors) but not --exact, which names the tensor and the bytes that differ.
 */
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KquantError } from "../../../src/errors.js";
import { KERAS_LAYOUT } from "../../../src/layouts/keras.js";
import { rulesFromFlags } from "../../../src/plan/from-flags.js";
import { runQuantize } from "../../../src/pipeline/quantize/run-quantize.js";
import { runVerify, type VerifyReport } from "../../../src/pipeline/read-back/verify.js";
import { editTensor, fixStoredHash, ODD_TENSORS, writeGaussianCheckpoint } from "../tamper.js";

let dir: string;
let source: string;
const outputs: Record<string, string> = {};

const TENSORS = ODD_TENSORS;

const MODES: Record<string, Parameters<typeof rulesFromFlags>[0]> = {
  int8: { mode: "int8" },
  int4: { mode: "int4" },
  grouped: { mode: "int4", blockSize: 4 },
  float8: { mode: "float8" },
};

const failing = (r: VerifyReport) => Object.fromEntries(r.tensors.filter((t) => !t.ok).map((t) => [t.name, t.problems.join(" | ")]));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kquant-exact-"));
  source = join(dir, "source.safetensors");
  await writeGaussianCheckpoint(source, TENSORS);
  for (const [tag, flags] of Object.entries(MODES)) {
    outputs[tag] = join(dir, `q.${tag}.safetensors`);
    await runQuantize({ input: source, output: outputs[tag], rules: rulesFromFlags(flags), tag, options: {}, quiet: true });
  }
  outputs.keras = join(dir, "q.keras.safetensors");
  await runQuantize({ input: source, output: outputs.keras, rules: rulesFromFlags({ mode: "int4", blockSize: 4 }), layout: KERAS_LAYOUT, tag: "keras", options: {}, quiet: true });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("verify --exact", () => {
  for (const tag of ["int8", "int4", "grouped", "float8", "keras"]) {
    it(`${tag}: a fresh output's bytes are what the kernel derives`, async () => {
      const r = await runVerify(outputs[tag]!, { against: source, exact: true, threads: 0 });
      expect(failing(r)).toEqual({});
      expect(r.ok).toBe(true);
    });
  }

  it("a scale nudged by one ulp, its hash recomputed, passes the other checks but not --exact", async () => {
    const path = join(dir, "forged.safetensors");
    await copyFile(outputs.int8!, path);
    await editTensor(path, "w.tall_scale", (d) => d.writeUInt32LE(d.readUInt32LE(4 * 3) + 1, 4 * 3));
    await fixStoredHash(path, "w.tall_scale");
    expect((await runVerify(path, { against: source, threads: 0 })).ok).toBe(true);
    for (const threads of [0, 2]) {
      const r = await runVerify(path, { against: source, exact: true, threads });
      expect(r.ok).toBe(false);
      expect(failing(r)).toEqual({ "w.tall": 'scale tensor "w.tall_scale": 1 of 160 byte(s) differ from what the int8 kernel makes from the original with the manifest\'s options (first at byte 12)' });
    }
  });

  it("a code changed within range, its hash recomputed, fails --exact naming the values tensor", async () => {
    const path = join(dir, "forged-code.safetensors");
    await copyFile(outputs.int4!, path);
    await editTensor(path, "w.odd", (d) => {
      d[3] = d[3]! ^ 0x01;
    });
    await fixStoredHash(path, "w.odd");
    const r = await runVerify(path, { against: source, exact: true, threads: 0 });
    expect(failing(r)["w.odd"]).toMatch(/^values tensor "w\.odd": 1 of \d+ byte\(s\) differ from what the int4 kernel makes .* \(first at byte 3\)$/);
  });

  it("--exact without --against is refused", async () => {
    await expect(runVerify(outputs.int8!, { exact: true })).rejects.toThrow(KquantError);
  });
});
