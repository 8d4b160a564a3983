/**
 * Issue #22 item 1: `--force` removes only what kquant wrote. An output folder holding the input
 * (its parent, `.`), a folder kquant did not write, or a file where a folder goes is refused in
 * one line, exit 2, with every file around it unchanged; a folder kquant wrote is replaced.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeModelFolder } from "../layouts/model-folder.js";
import { builtCli, caseDir, changes, expectOrderly, kquant, snapshot } from "./harness.js";

const cli = builtCli();

/** `root/work/model` (a model folder) plus a file beside it, in a fresh root (which the tests snapshot). */
async function workWithModel(): Promise<string> {
  const work = join(caseDir("force"), "work");
  mkdirSync(join(work, "model"), { recursive: true });
  await writeModelFolder(join(work, "model"));
  writeFileSync(join(work, "notes.txt"), "mine\n");
  return work;
}

describe("--force never removes the input or a folder kquant did not write", () => {
  const refused: [string, (work: string) => string[], RegExp][] = [
    ["-o the input's parent", (work) => ["-o", work], /holds the input folder/],
    ["-o .", () => ["-o", "."], /holds the input folder/],
    ["-o ..", () => ["-o", ".."], /holds the input folder/],
    ["-o a folder kquant did not write", (work) => {
      mkdirSync(join(work, "theirs"));
      writeFileSync(join(work, "theirs", "data.bin"), "precious");
      return ["-o", "theirs"];
    }, /was not written by kquant/],
    ["-o a file", () => ["-o", "notes.txt"], /is not a folder/],
  ];
  for (const [label, args, message] of refused) {
    it(label, async () => {
      const work = await workWithModel();
      try {
        const extra = args(work);
        const before = snapshot(join(work, ".."));
        const r = await kquant(cli(), ["quantize", "model", "--int8", "--force", ...extra], { cwd: work });
        expectOrderly(r, label);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(message);
        expect(changes(before, snapshot(join(work, "..")))).toEqual([]);
      } finally {
        rmSync(join(work, ".."), { recursive: true, force: true });
      }
    });
  }

  it("replaces a folder kquant wrote, and nothing beside it", async () => {
    const work = await workWithModel();
    try {
      const first = await kquant(cli(), ["quantize", "model", "--int8", "-o", "out"], { cwd: work });
      expect(first.code, first.stderr).toBe(0);
      const before = snapshot(work);
      const r = await kquant(cli(), ["quantize", "model", "--int4", "--force", "-o", "out"], { cwd: work });
      expectOrderly(r, "replace");
      expect(r.code, r.stderr).toBe(0);
      expect(changes(before, snapshot(work)).every((k) => k.startsWith("out/"))).toBe(true);
    } finally {
      rmSync(join(work, ".."), { recursive: true, force: true });
    }
  });
});
