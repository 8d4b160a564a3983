/**
 * Issue #22 item 7, the slow cases: 150,000 tensors (inspect, quantize, verify) and 200,000 recipe
 * rules, on the built CLI; each works (exit 0) with no stack trace and nothing but its output written.
 */
import { closeSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { builtCli, caseDir, changes, expectOrderly, kquant, snapshot } from "../hostile/harness.js";

let root: string;
const TENSORS = 150_000;

const cli = builtCli(() => {
  root = caseDir("many");
  // 150,000 tiny float32 tensors: the header is what is large.
  const header: Record<string, unknown> = {};
  for (let i = 0; i < TENSORS; i++) header[`t.${i}.weight`] = { dtype: "F32", shape: [2, 2], data_offsets: [i * 16, (i + 1) * 16] };
  const text = JSON.stringify(header);
  const json = text.padEnd(Math.ceil(text.length / 8) * 8, " ");
  const fd = openSync(join(root, "many.safetensors"), "w");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, length);
  writeSync(fd, json);
  const data = new Float32Array(TENSORS * 4).map((_, k) => ((k % 7) - 3) / 8);
  writeSync(fd, new Uint8Array(data.buffer));
  closeSync(fd);
  writeFileSync(join(root, "rules.json"), JSON.stringify({ rules: [...Array.from({ length: 200_000 }, (_, i) => ({ match: `x${i}`, mode: "int8" })), { match: "*", mode: "int8" }] }));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("150,000 tensors and 200,000 rules", () => {
  it("inspect, quantize and verify 150,000 tensors", async () => {
    const before = snapshot(root);
    const inspect = await kquant(cli(), ["inspect", "many.safetensors", "--json"], { cwd: root, limitMs: 300_000 });
    expectOrderly(inspect, "inspect");
    expect(inspect.code).toBe(0);
    const q = await kquant(cli(), ["quantize", "many.safetensors", "--int8", "-o", "q.safetensors", "-q"], { cwd: root, limitMs: 600_000 });
    expectOrderly(q, "quantize");
    expect(q.code, q.stderr).toBe(0);
    expect(changes(before, snapshot(root))).toEqual(["q.safetensors", "q.safetensors.json"]);
    const v = await kquant(cli(), ["verify", "q.safetensors"], { cwd: root, limitMs: 600_000 });
    expectOrderly(v, "verify");
    expect(v.code, v.stderr).toBe(0);
  }, 900_000);

  it("a recipe of 200,000 rules", async () => {
    const r = await kquant(cli(), ["quantize", "many.safetensors", "--recipe", "rules.json", "--dry-run", "--json"], { cwd: root, limitMs: 300_000 });
    expectOrderly(r, "recipe");
    expect(r.code, r.stderr.slice(0, 500)).toBe(0);
  }, 600_000);
});
