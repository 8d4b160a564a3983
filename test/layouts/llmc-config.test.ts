import { describe, expect, it } from "vitest";
import { llmcQuantizationConfig } from "../../src/layouts/llmc-config.js";
import { llmcPreset } from "../../src/quant/llmc/presets.js";
import { loadLlmcGolden } from "../support/llmc.js";

interface Case {
  op: string;
  preset?: string;
  ignore?: string[];
  tensors?: Record<string, unknown>;
  quantization_config?: Record<string, unknown> & { ignore: string[] };
  error?: unknown;
}

const golden = loadLlmcGolden<Case>("model_free");

describe("quantization_config as model_free_ptq writes it (llm-compressor 0.14.0.1, version aside)", () => {
  for (const c of golden.cases.filter((k) => k.op === "model_free_ptq" && !k.error)) {
    it(`${c.preset}, ignore ${JSON.stringify(c.ignore)}`, () => {
      const quantizedAny = Object.keys(c.tensors!).some((k) => k.endsWith(".weight_scale"));
      const got = llmcQuantizationConfig(llmcPreset(c.preset!), c.preset!, c.ignore!, quantizedAny);
      const { version, ...rest } = got;
      expect(version).toBe(golden.compressed_tensors_version);
      expect(rest).toEqual(c.quantization_config);
    });
  }
});
