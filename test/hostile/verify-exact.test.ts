/**
 * Issue #22 item 8b, on the built CLI (its worker threads included): a scale forged by one ulp
 * with its hash recomputed passes `verify --against`, and fails `verify --against --exact` (exit 1)
 * naming the tensor.
 */
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeModelFolder } from "../layouts/model-folder.js";
import { editTensor, fixStoredHash } from "../pipeline/tamper.js";
import { builtCli, caseDir, expectOrderly, kquant } from "./harness.js";

let root: string;
const cli = builtCli(async (built) => {
  root = caseDir("verify-exact");
  mkdirSync(join(root, "model"));
  await writeModelFolder(join(root, "model"));
  const r = await kquant(built, ["quantize", "model/model.safetensors", "--int8", "-o", "q.safetensors", "-q"], { cwd: root });
  expect(r.code, r.stderr).toBe(0);
  copyFileSync(join(root, "q.safetensors"), join(root, "forged.safetensors"));
  await editTensor(join(root, "forged.safetensors"), "lm_head.weight_scale", (d) => d.writeUInt32LE(d.readUInt32LE(0) + 1, 0));
  await fixStoredHash(join(root, "forged.safetensors"), "lm_head.weight_scale");
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("verify --exact on the built CLI", () => {
  for (const threads of ["0", "2"]) {
    it(`--threads ${threads}: an untouched output passes, a forged scale fails only --exact`, async () => {
      const run = (file: string, exact: boolean) => kquant(cli(), ["verify", file, "--against", "model/model.safetensors", ...(exact ? ["--exact"] : []), "--threads", threads], { cwd: root });
      const clean = await run("q.safetensors", true);
      expectOrderly(clean, "verify");
      expect(clean.code, clean.stdout).toBe(0);
      expect((await run("forged.safetensors", false)).code).toBe(0);
      const forged = await run("forged.safetensors", true);
      expectOrderly(forged, "verify");
      expect(forged.code).toBe(1);
      expect(forged.stdout).toMatch(/FAIL lm_head\.weight \(int8\)\n\s+scale tensor "lm_head\.weight_scale": 1 of \d+ byte\(s\) differ from what the int8 kernel makes from the original with the manifest's options \(first at byte 0\)/);
    });
  }
});
