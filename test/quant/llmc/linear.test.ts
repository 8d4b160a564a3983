import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { LlmcDType } from "../../../src/quant/llmc/arith.js";
import { llmcGlobalScale, llmcLinearUnlessNonFinite, llmcRefusal, llmcValueRefusal, quantizeLlmcLinear, type LlmcWeight } from "../../../src/quant/llmc/linear.js";
import { LLMC_PRESETS, formatOf, llmcPreset } from "../../../src/quant/llmc/presets.js";
import type { Tensor } from "../../../src/quant/tensor.js";
import { bytesOf, decodeTensor, type GoldenTensor } from "../../support/golden.js";
import { goldenWeight, loadLlmcGolden, prngWeight, sixteenBit } from "../../support/llmc.js";
import { scalar } from "../../support/simd.js";

type Out = GoldenTensor & { sha256?: string; noncontiguous?: boolean };

interface Case {
  op: "input" | "validate_config" | "process" | "process_fused";
  preset?: string;
  dtype?: LlmcDType;
  input_case?: string;
  input?: GoldenTensor;
  input_prng?: { seed: number; shape: [number, number]; wide: boolean };
  inputs?: Record<string, GoldenTensor>;
  outputs?: Record<string, Out>;
  same_as?: string;
  format?: string;
  error?: { error: string; message: string };
}

const golden = loadLlmcGolden<Case>("weights");
const PREFIX = "model.layers.0.mlp.down_proj.";

const inputs = new Map<string, LlmcWeight & { values: Float32Array }>();
for (const c of golden.cases.filter((k) => k.op === "input")) {
  const w = c.input ? goldenWeight(c.input) : prngWeight(c.input_prng!.seed, c.input_prng!.shape, c.dtype!, c.input_prng!.wide);
  inputs.set(`${c.dtype}/${c.input_case}`, w);
}

/** The process case holding the outputs a {same_as} case points to. */
function resolve(c: Case): Case {
  if (c.same_as === undefined) return c;
  return golden.cases.find((k) => k.op === "process" && k.preset === c.same_as && k.dtype === c.dtype && k.input_case === c.input_case)!;
}

function expectOutputs(got: Map<string, Tensor>, expected: Record<string, Out>, prefix: string): void {
  expect([...got.keys()].map((k) => prefix + k).sort()).toEqual(Object.keys(expected).sort());
  for (const [suffix, t] of got) {
    const e = expected[prefix + suffix]!;
    expect([suffix, t.dtype, t.shape]).toEqual([suffix, e.dtype, e.shape]);
    const bytes = bytesOf(t.data);
    if (e.sha256 !== undefined) expect([suffix, createHash("sha256").update(bytes).digest("hex")]).toEqual([suffix, e.sha256]);
    else expect([suffix, bytes.toString("hex")]).toEqual([suffix, bytesOf(decodeTensor(e).data).toString("hex")]);
  }
}

describe("model_free_ptq per Linear weight: golden vectors from llm-compressor 0.14.0.1 on CPU", () => {
  it("come from the pinned reference and cover every preset", () => {
    expect(golden.llmcompressor_version).toBe("0.14.0.1");
    const names = [...new Set(golden.cases.filter((c) => c.preset).map((c) => c.preset))];
    expect(names).toEqual(LLMC_PRESETS.map((p) => p.name));
  });

  for (const c of golden.cases.filter((k) => k.op === "validate_config")) {
    it(`${c.preset}: refused as model_free_ptq refuses it`, () => {
      expect(llmcPreset(c.preset!).refusal).toBe(c.error!.message);
    });
  }

  for (const c of golden.cases.filter((k) => k.op === "process")) {
    const preset = llmcPreset(c.preset!);
    const w = inputs.get(`${c.dtype}/${c.input_case}`)!;
    const outputs = resolve(c).outputs;
    const failsToSave = outputs !== undefined && Object.values(outputs).some((o) => o.noncontiguous);
    it(`${c.preset} ${c.dtype} ${c.input_case} [${w.rows}, ${w.cols}]${c.error || failsToSave ? ": refused" : ""}`, () => {
      if (c.error !== undefined || failsToSave) {
        expect(llmcRefusal(preset, [w.rows, w.cols])).not.toBeNull();
        return;
      }
      expect(llmcRefusal(preset, [w.rows, w.cols])).toBeNull();
      expect(formatOf(preset)).toBe(c.format);
      if (c.input_case === "nonfinite") {
        // the reference's bytes here depend on torch's vectorisation: kquant keeps the weight float
        expect(llmcValueRefusal(w.values)).toMatch(/^non-finite value NaN at element 5: /);
        expect(llmcValueRefusal(sixteenBit(w).values)).toMatch(/^non-finite value NaN at element 5: /);
        expect(llmcLinearUnlessNonFinite(sixteenBit(w), preset, 1)).toBeNull();
        return;
      }
      expect(llmcValueRefusal(w.values)).toBeNull();
      expectOutputs(quantizeLlmcLinear(w, preset), outputs!, PREFIX);
      // as --scheme passes a 16-bit weight (its bit patterns, widened by the kernels), and by the scalar loops
      expectOutputs(quantizeLlmcLinear(sixteenBit(w), preset), outputs!, PREFIX);
      expectOutputs(scalar(() => quantizeLlmcLinear(sixteenBit(w), preset)), outputs!, PREFIX);
      expectOutputs(llmcLinearUnlessNonFinite(sixteenBit(w), preset)!, outputs!, PREFIX);
    });
  }

  for (const c of golden.cases.filter((k) => k.op === "process_fused")) {
    it(`${c.preset} ${c.dtype}: q/k/v and gate/up share the fused set's global scale`, () => {
      const preset = llmcPreset(c.preset!);
      const ws = new Map(Object.entries(c.inputs!).map(([k, t]) => [k, goldenWeight(t)]));
      const sets = [["q_proj", "k_proj", "v_proj"], ["gate_proj", "up_proj"], ["down_proj"]];
      for (const set of sets) {
        const members = [...ws.keys()].filter((k) => set.some((s) => k.includes(`.${s}.`)));
        const gs = llmcGlobalScale(members.map((k) => ws.get(k)!));
        for (const name of members) {
          const prefix = name.slice(0, -"weight".length);
          const expected = Object.fromEntries(Object.entries(c.outputs!).filter(([k]) => k.startsWith(prefix)));
          expectOutputs(quantizeLlmcLinear(ws.get(name)!, preset, gs), expected, prefix);
        }
      }
    });
  }
});
