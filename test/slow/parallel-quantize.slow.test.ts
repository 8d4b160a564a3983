import type { KerasBackend } from "../../src/quant/backend.js";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rulesFromFlags, type QuantFlags } from "../../src/plan/from-flags.js";
import { runQuantize, type QuantizeJob } from "../../src/pipeline/quantize/run-quantize.js";
import { gaussian, writeSafetensors } from "../support/files.js";
import { writeShardedCheckpoint } from "../pipeline/checkpoints.js";
import { QUANT_MODES } from "../pipeline/steps.js";
import { bundleWorker } from "../pipeline/worker-bundle.js";

let dir: string;
let workerUrl: URL;
let input: string;
let lastOut: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kquant-parallel-"));
  workerUrl = await bundleWorker(dir);
  input = await writeShardedCheckpoint(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every file a run wrote, by name, as a sha256 of its bytes (deep-comparing megabytes is slow). */
function filesOf(folder: string): Record<string, string> {
  return Object.fromEntries(readdirSync(folder).sort().map((n) => [n, createHash("sha256").update(readFileSync(join(folder, n))).digest("hex")]));
}

/** A run of `from` as `flags` say into a fresh folder named after `tag`, with `threads` workers. */
function runIn(from: string, output: string, flags: QuantFlags, threads: number, tag: string, extra: Partial<QuantizeJob> = {}): { run: Promise<unknown>; out: string } {
  const out = mkdtempSync(join(dir, `${tag}-t${threads}-`));
  // NaN cannot reach grouped int4's cast on tensorflow (the default backend refuses it), so the
  // --allow-nonfinite runs use jax's arithmetic, which kquant reproduces NaN and all.
  const backend: KerasBackend | undefined = extra.allowNonFinite ? "jax" : undefined;
  const rules = rulesFromFlags(flags).map((r) => (r.action.kind === "quantize" && backend ? { ...r, action: { ...r.action, spec: { ...r.action.spec, backend } } } : r));
  const run = runQuantize({ input: from, output: join(out, output), rules, tag: "q", options: { ...flags }, quiet: true, threads, workerUrl, ...extra });
  return { run, out };
}

async function quantize(flags: QuantFlags, threads: number, tag: string): Promise<Record<string, string>> {
  const { run, out } = runIn(input, "model.q.safetensors.index.json", flags, threads, tag);
  await run;
  lastOut = out;
  return filesOf(out);
}


describe("worker threads give the bytes of the in-process loop", () => {
  for (const [tag, flags] of QUANT_MODES) {
    it(`${tag}: 2 workers and 1 worker write the same files as no worker`, async () => {
      const reference = await quantize(flags, 0, tag);
      expect(Object.keys(reference)).toEqual([
        "model-00001-of-00002.q.safetensors",
        "model-00002-of-00002.q.safetensors",
        "model.q.safetensors.index.json",
        "model.q.safetensors.index.json.json",
      ]);
      const manifest = JSON.parse(readFileSync(join(lastOut, "model.q.safetensors.index.json.json"), "utf8"));
      // The tall matrices are quantized, so the row-slice path is exercised, and hashes are filled in.
      expect(manifest.tensors["layers.0.attn.weight"].mode).not.toBe("passthrough");
      expect(manifest.tensors["layers.0.attn.weight"].hashes.source).not.toMatch(/^0+$/);
      expect(await quantize(flags, 2, tag)).toEqual(reference);
      expect(await quantize(flags, 1, tag)).toEqual(reference);
    });
  }

  it("slice boundaries: an odd number of rows, a last slice that would hold a lone partial group", async () => {
    // 1030 rows: slices of 512 rows leave 6, a partial group of 16 that must join the slice before.
    const path = join(dir, "odd.safetensors");
    await writeSafetensors(path, [
      { name: "a", dtype: "F32", shape: [1030, 1024], data: gaussian(1030 * 1024, 21) },
      { name: "b", dtype: "F32", shape: [1025, 1023], data: gaussian(1025 * 1023, 22) },
    ]);
    for (const [tag, flags] of QUANT_MODES) {
      const written: Record<string, string>[] = [];
      for (const threads of [0, 2]) {
        const { run, out } = runIn(path, "odd.q.safetensors", flags, threads, `odd-${tag}`);
        await run;
        written.push(filesOf(out));
      }
      expect(written[1], tag).toEqual(written[0]);
    }
  });

  /** An odd number of rows spread over several slices, NaN and ±Inf in the first and last slices. */
  async function writeNonFinite(): Promise<string> {
    const data = gaussian(1501 * 1024, 9);
    data[5] = NaN;
    data[1400 * 1024] = Infinity;
    data[1499 * 1024 + 3] = -Infinity;
    data[1500 * 1024 + 7] = NaN;
    const bad = join(dir, "bad.safetensors");
    await writeSafetensors(bad, [{ name: "w", dtype: "F32", shape: [1501, 1024], data }]);
    return bad;
  }

  for (const [tag, flags] of QUANT_MODES) {
    it(`${tag}: reports the whole tensor's NaN count, as the in-process loop does, and writes nothing`, async () => {
      const bad = await writeNonFinite();
      const messages: string[] = [];
      for (const threads of [0, 2]) {
        const { run, out } = runIn(bad, "bad.q.safetensors", flags, threads, `bad-${tag}`);
        await expect(run).rejects.toThrow(/4 of 1537024 values are NaN or Inf/);
        messages.push(((await run.catch((e: Error) => e)) as Error).message);
        expect(readdirSync(out)).toEqual([]);
      }
      expect(messages[1]).toBe(messages[0]);
    });

    it(`${tag}: with --allow-nonfinite, workers write the bytes of the in-process loop`, async () => {
      const bad = await writeNonFinite();
      const written: Record<string, string>[] = [];
      for (const threads of [0, 2]) {
        const { run, out } = runIn(bad, "bad.q.safetensors", flags, threads, `nonfinite-${tag}`, { allowNonFinite: true });
        await run;
        written.push(filesOf(out));
      }
      expect(written[1]).toEqual(written[0]);
    });
  }
});
