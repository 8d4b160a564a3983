/**
 * The mode registry (src/modes): every registered mode quantizes, is written with the stored
 * tensors its descriptor says, and reads back through its own read-back; names resolve from flags
 * and recipes; an unknown name is refused in one line.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KquantError } from "../../src/errors.js";
import { allModes, formatName, isMode, modeNamed, modeOfFlag, MODES } from "../../src/modes/registry.js";
import type { ModeDescriptor } from "../../src/modes/types.js";
import { buildPlan, type QuantizeStep } from "../../src/plan/plan.js";
import { parseRecipe } from "../../src/plan/recipe.js";
import type { Rule } from "../../src/plan/rules.js";
import { specProblem } from "../../src/plan/spec-check.js";
import type { QuantSpec } from "../../src/plan/spec.js";
import { newManifest } from "../../src/pipeline/manifest.js";
import { quantizeTensor } from "../../src/pipeline/quantize/quantize-tensor.js";
import { runQuantize } from "../../src/pipeline/quantize/run-quantize.js";
import { contentProblems } from "../../src/pipeline/read-back/check-record.js";
import { dequantizeRecord } from "../../src/pipeline/read-back/record-values.js";
import { expectedTensors } from "../../src/pipeline/manifest.js";
import { KQUANT_LAYOUT } from "../../src/layouts/kquant.js";
import { bytes, gaussian, writeSafetensors } from "../support/files.js";

/** An odd shape on purpose: int4 packs a padding nibble along axis 1, a group of 16 is short at the end. */
const SHAPE = [24, 45];

/** The mode's defaults, with a block size where it groups. */
const specOf = (d: ModeDescriptor): QuantSpec => ({ ...d.defaults(), ...(d.grouped ? { blockSize: 16 } : {}) });
const rulesOf = (spec: QuantSpec): Rule[] => [{ patterns: ["*"], action: { kind: "quantize", spec }, origin: "test", minRank: 2, catchAll: true }];

function stepOf(d: ModeDescriptor): QuantizeStep {
  const info = { name: "w", dtype: "F32" as const, shape: SHAPE, byteLength: SHAPE[0]! * SHAPE[1]! * 4, file: "m.safetensors" };
  const step = buildPlan("m.safetensors", [info], rulesOf(specOf(d))).steps[0]!;
  if (step.kind !== "quantize") throw new Error(`${d.name}: not quantized: ${JSON.stringify(step)}`);
  return step;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

describe("the registry", () => {
  it("holds the five modes, in the order messages and reports list them, each under its own name", () => {
    expect(MODES).toEqual(["int8", "int4", "int4_grouped", "float8_e4m3fn", "float8_e5m2"]);
    for (const d of allModes()) {
      expect(modeNamed(d.name)).toBe(d);
      expect(d.defaults().mode).toBe(d.name);
      expect(specProblem(specOf(d))).toBeNull();
    }
    expect(new Set(allModes().map((d) => JSON.stringify([d.tag, d.grouped]))).size).toBe(MODES.length);
  });

  it("refuses an unknown name in one line naming the known modes", () => {
    expect(() => modeNamed("nvfp4")).toThrow(KquantError);
    expect(() => modeNamed("nvfp4")).toThrow(/^unknown mode "nvfp4" \(known: int8, int4, int4_grouped, float8_e4m3fn, float8_e5m2\)$/);
    expect(isMode("passthrough")).toBe(false);
    expect(isMode(7)).toBe(false);
    expect(() => parseRecipe("r.json", JSON.stringify({ rules: [{ match: "*", mode: "nvfp4" }] }))).toThrow(
      /"mode" must be one of int8, int4, int4_grouped, float8_e4m3fn, float8_e5m2, float8 \(or give "keras" or "skip"\)/,
    );
  });

  it("resolves the quantize flags and recipe names to modes as the CLI always has", () => {
    expect(modeOfFlag("int8")).toBe("int8");
    expect(modeOfFlag("int8", { blockSize: true })).toBe("int8");
    expect(modeOfFlag("int4")).toBe("int4");
    expect(modeOfFlag("int4", { blockSize: true })).toBe("int4_grouped");
    expect(modeOfFlag("float8")).toBe("float8_e4m3fn");
    for (const f of ["e4m3", "e4m3fn", "float8_e4m3fn"]) expect(modeOfFlag("float8", { format: f })).toBe("float8_e4m3fn");
    for (const f of ["e5m2", "float8_e5m2"]) expect(modeOfFlag("float8", { format: f })).toBe("float8_e5m2");
    // Manifests record kquant's own format name, whichever spelling was given.
    expect(["e4m3", "e4m3fn", "float8_e4m3fn", "e5m2", "float8_e5m2", "e9"].map((f) => formatName("float8", f))).toEqual(["e4m3", "e4m3", "e4m3", "e5m2", "e5m2", undefined]);
    const recipeMode = (rule: Record<string, unknown>) => {
      const r = parseRecipe("r.json", JSON.stringify({ rules: [{ match: "*", ...rule }] }))[0]!;
      return r.action.kind === "quantize" ? r.action.spec.mode : r.action.kind;
    };
    expect(recipeMode({ mode: "float8" })).toBe("float8_e4m3fn");
    expect(recipeMode({ mode: "int4", block_size: 32 })).toBe("int4_grouped");
    for (const m of MODES) expect(recipeMode({ mode: m })).toBe(m);
  });
});

describe("every registered mode", () => {
  const x = gaussian(SHAPE[0]! * SHAPE[1]!, 7, 0.05);
  for (const d of allModes()) {
    it(`${d.name}: reads back through its own read-back close to the source, and its codes pass its own checks`, () => {
      const step = stepOf(d);
      const stored = quantizeTensor(step, bytes(x), "m.safetensors");
      const rec = newManifest("kquant", "m.safetensors", null, {}, [step]).tensors.w!;
      expect(rec.mode).toBe(d.name);
      const back = dequantizeRecord(rec, stored);
      expect(back.length).toBe(x.length);
      // A read-back that misreads the codes or the scale is far off; one code width's worth of error is not.
      expect(cosine(back, x)).toBeGreaterThan(1 - 2 ** -d.bits);
      const expected = expectedTensors("w", rec, KQUANT_LAYOUT);
      if (typeof expected === "string") throw new Error(expected);
      expect(contentProblems(rec, expected, stored)).toEqual([]);
      // A NaN scale is caught whatever the mode.
      const badScale = { ...stored, scale: bytes(new Float32Array(stored.scale.length / 4).fill(NaN)) };
      expect(contentProblems(rec, expected, badScale).join("\n")).toMatch(/^scale "w_scale": \d+ of \d+ scale value\(s\) are not finite and positive/);
    });
  }
});

describe("what the writer stores is what each descriptor says", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kquant-modes-"));
    await writeSafetensors(join(dir, "m.safetensors"), [{ name: "w", dtype: "F32", shape: SHAPE, data: gaussian(SHAPE[0]! * SHAPE[1]!, 3, 0.05) }]);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const d of allModes()) {
    it(`${d.name}: values, scale and zero with the descriptor's dtypes and shapes`, async () => {
      const output = join(dir, `m.${d.name}.safetensors`);
      await runQuantize({ input: join(dir, "m.safetensors"), output, rules: rulesOf(specOf(d)), tag: d.name, options: {}, quiet: true, threads: 0 });
      const file = await readFile(output);
      const header = JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString("utf8")) as Record<string, { dtype: string; shape: number[] }>;
      const tensors = Object.fromEntries(Object.entries(header).filter(([k]) => k !== "__metadata__").map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape }]));
      const spec = stepOf(d).spec;
      const packAxis = d.packed ? spec.packAxis! : -1;
      const scaleShape = d.scaleShape(SHAPE, spec);
      expect(tensors).toEqual({
        w: { dtype: d.valuesDtype, shape: SHAPE.map((n, i) => (i === packAxis ? Math.ceil(n / 2) : n)) },
        w_scale: { dtype: "F32", shape: scaleShape },
        ...(d.zeroPoint ? { w_zero: { dtype: "I8", shape: scaleShape } } : {}),
      });
      // The scale's shape as Keras keeps it: one per group, per tensor, or per slice along the axis.
      const n = scaleShape.reduce((a, b) => a * b, 1);
      expect(n).toBe(d.grouped ? SHAPE[0]! * Math.ceil(SHAPE[1]! / 16) : spec.axis === null ? 1 : SHAPE[0]!);
    });
  }
});
