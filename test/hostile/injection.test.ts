/**
 * Issue #22 item 11: control characters in tensor names (an escape sequence, a carriage return, a
 * bell, a newline) reach neither the terminal nor the HTML report raw: every command's text output
 * and error line, on the built CLI, shows them escaped (`\u001b`), and so does the page.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { gaussian, writeSafetensors } from "../support/files.js";
import { builtCli, caseDir, expectOrderly, kquant } from "./harness.js";

/** Every control character but the newline and tab that end and align lines. */
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;
const EVIL = "layer\x1b[2J\x1b]0;owned\x07\r.weight\nfake";

let root: string;
const cli = builtCli(async () => {
  root = caseDir("inject");
  await writeSafetensors(join(root, "m.safetensors"), [{ name: EVIL, dtype: "F32", shape: [4, 8], data: gaussian(32) }]);
  const q = await kquant(cli(), ["quantize", "m.safetensors", "--int8", "-o", "q.safetensors", "-q"], { cwd: root });
  expect(q.code, q.stderr).toBe(0);
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("control characters in tensor names are printed escaped", () => {
  // Each with whether it prints the name (the others print totals only).
  const runs: [string[], boolean][] = [
    [["inspect", "m.safetensors"], true],
    [["inspect", "q.safetensors", "--stats"], true],
    [["quantize", "m.safetensors", "--int8", "-v", "--dry-run"], true],
    [["quantize", "m.safetensors", "--int4", "--block-size", "3"], false],
    [["quantize", "m.safetensors", "--int8", "--include", "nothing*"], false],
    [["verify", "q.safetensors"], true],
    [["verify", "q.safetensors", "--against", "m.safetensors", "--html", "page.html"], true],
    [["dequantize", "q.safetensors", "-o", "d.safetensors"], false],
  ];
  for (const [args, named] of runs) {
    it(args.join(" "), async () => {
      const r = await kquant(cli(), args, { cwd: root });
      expectOrderly(r, args.join(" "));
      expect(r.stdout, "stdout").not.toMatch(RAW);
      expect(r.stderr, "stderr").not.toMatch(RAW);
      if (named) expect(`${r.stdout}${r.stderr}`).toMatch(/\\u001b/);
    });
  }

  it("the HTML report's text", () => {
    const page = readFileSync(join(root, "page.html"), "utf8");
    expect(page).not.toMatch(RAW);
    expect(page).toContain("\\u001b");
  });
});
