import { describe, expect, it } from "vitest";
import { llmcFusedSets, llmcIgnoreMatcher, llmcQuantizable } from "../../src/plan/llmc-targets.js";
import { loadLlmcGolden } from "../support/llmc.js";

interface Case {
  op: "get_fused_names" | "match_quantizable_tensors";
  case?: string;
  names: string[];
  sets?: string[][];
  error?: { error: string; message: string };
  ignore?: string[];
  quantized?: string[];
}

const golden = loadLlmcGolden<Case>("names");

describe("model_free_ptq's name rules: golden vectors from llm-compressor 0.14.0.1", () => {
  for (const c of golden.cases.filter((k) => k.op === "get_fused_names")) {
    it(`fused sets: ${c.case}`, () => {
      if (c.error) {
        expect(() => llmcFusedSets(c.names)).toThrow(/matched twice before completing a fused set/);
        expect(c.error.message).toMatch(/^Matched a .* twice before completing set/);
      } else {
        expect(llmcFusedSets(c.names)).toEqual(c.sets);
      }
    });
  }

  it("refuses an ignore pattern JavaScript cannot compile, naming it (Python's (?P<name>) groups)", () => {
    expect(() => llmcIgnoreMatcher(["re:(?P<x>mlp)"])).toThrow(/^ignore entry "re:\(\?P<x>mlp\)": not a regular expression/);
  });

  for (const c of golden.cases.filter((k) => k.op === "match_quantizable_tensors")) {
    it(`quantized tensors with ignore ${JSON.stringify(c.ignore)}`, () => {
      expect(llmcQuantizable(c.names, llmcIgnoreMatcher(c.ignore!))).toEqual(c.quantized);
    });
  }
});
