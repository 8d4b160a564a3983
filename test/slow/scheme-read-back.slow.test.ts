/**
 * Every case of fixtures/llmcompressor/vectors/decompress.json (27 presets × the tiny Llama in
 * bfloat16, float16, float32): kquant's dequantize of its --scheme folder equals compressed-tensors
 * 0.19.0's decompression bit for bit, natural dtype and float32. The fast suite runs one case per
 * format and dtype (test/pipeline/read-back/scheme-folder.test.ts).
 */
import { afterAll, describe, it } from "vitest";
import { tempDir } from "../support/cli.js";
import { checkDecompressCase, DECOMPRESS_CASES } from "../support/llmc-read-back.js";

const { dir, cleanup } = tempDir();
afterAll(cleanup);

describe("dequantize of every --scheme preset's folder equals compressed-tensors' decompression", () => {
  for (const c of DECOMPRESS_CASES) it(`${c.preset} on the ${c.model_dtype} tiny Llama`, () => checkDecompressCase(dir, c));
});
