/** A small quantized checkpoint whose tensor names try to break out of HTML, verified with histograms. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rulesFromFlags } from "../../src/plan/from-flags.js";
import { runQuantize } from "../../src/pipeline/quantize/run-quantize.js";
import { runVerify, type VerifyReport } from "../../src/pipeline/read-back/verify.js";
import { HISTOGRAM_BINS } from "../../src/quant/error-histogram.js";
import { writeGaussianCheckpoint } from "../pipeline/tamper.js";

export const EVIL_NAME = `<script>document.title="pwned"</script>&"q'.weight`;

/** Six weights (one with EVIL_NAME) quantized to int4, and a bias kept as it is. */
export const TENSORS = [
  { name: "layers.0.attn.q.weight", shape: [16, 24] },
  { name: EVIL_NAME, shape: [24, 16] },
  { name: "layers.0.mlp.up.weight", shape: [32, 16] },
  { name: "layers.0.mlp.down.weight", shape: [16, 32] },
  { name: "layers.1.attn.q.weight", shape: [16, 16] },
  { name: "layers.1.mlp.up.weight", shape: [40, 16] },
  { name: "layers.0.attn.q.bias", shape: [16] },
];

export interface Fixture {
  dir: string;
  source: string;
  quantized: string;
  cleanup: () => Promise<void>;
}

export async function makeFixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), "kquant-report-"));
  const source = join(dir, "source.safetensors");
  const quantized = join(dir, "source.int4.safetensors");
  await writeGaussianCheckpoint(source, TENSORS);
  await runQuantize({ input: source, output: quantized, rules: rulesFromFlags({ mode: "int4" }), tag: "int4", options: {}, quiet: true });
  return { dir, source, quantized, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** `runVerify` as `kquant verify --html` runs it. */
export function verifyWithHistograms(f: Fixture, thresholds: { minSqnr?: number } = {}): Promise<VerifyReport> {
  return runVerify(f.quantized, { against: f.source, histogramBins: HISTOGRAM_BINS, ...thresholds });
}
