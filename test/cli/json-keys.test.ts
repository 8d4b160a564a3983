/** Every --json output speaks one key style, snake_case identifiers (maps keyed by tensor names or metadata aside); reasons are values, never keys. */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO, runCli, tempDir } from "../support/cli.js";

/** Keys whose values are maps keyed by names kquant does not choose (a file's metadata). */
const FREE_KEYS = new Set(["metadata"]);

function badKeys(value: unknown, path = "$"): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => badKeys(v, `${path}[${i}]`));
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => [
    ...(/^[a-z0-9_]+$/.test(k) ? [] : [`${path}.${k}`]),
    ...(FREE_KEYS.has(k) ? [] : badKeys(v, `${path}.${k}`)),
  ]);
}

let dir: string;
let cleanup: () => void;
let q: string;
beforeAll(async () => {
  ({ dir, cleanup } = tempDir());
  q = join(dir, "q.safetensors");
  const r = await runCli("quantize", DEMO, "--int4", "--block-size", "32", "--value-range", "-7,7", "-o", q, "-q");
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => cleanup());

describe("--json", () => {
  it("uses snake_case keys in quantize, verify, inspect and dequantize", async () => {
    const outputs = {
      quantize: await runCli("quantize", DEMO, "--int8", "--axis", "0", "--dry-run", "--json", "-o", join(dir, "x.safetensors")),
      verify: await runCli("verify", q, "--against", DEMO, "--min-sqnr", "1", "--max-abs-error", "9", "--json"),
      inspect: await runCli("inspect", q, "--json", "--stats"),
      dequantize: await runCli("dequantize", q, "-o", join(dir, "d.safetensors"), "--json"),
    };
    for (const [command, r] of Object.entries(outputs)) {
      expect(r.code, `${command}: ${r.stderr}`).toBe(0);
      const json = JSON.parse(r.stdout);
      expect(badKeys(json), command).toEqual([]);
    }
    const verify = JSON.parse(outputs.verify.stdout);
    expect(verify.thresholds).toEqual({ min_sqnr: 1, max_abs_error: 9 });
    expect(verify.tensors.find((t: { mode: string }) => t.mode !== "passthrough").metrics).toHaveProperty("sqnr_db");
    const inspect = JSON.parse(outputs.inspect.stdout);
    expect(inspect.kquant.options).toMatchObject({ block_size: 32, value_range: [-7, 7] });
  });
});
