/**
 * Issue #22 item 9: two runs writing the same new output without --force. Both find the name free
 * at the start; the first to finish takes it, atomically (a hard link for a file, the rename of the
 * staging folder for a folder), and the second is refused in one line, exit 2, leaving the winner's
 * output whole and nothing of its own.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeLargeCheckpoint } from "../support/files.js";
import { builtCli, caseDir, expectOrderly, kquant } from "./harness.js";

const MiB = 1024 * 1024;
let root: string;
const cli = builtCli(async () => {
  root = caseDir("race");
  mkdirSync(join(root, "model"));
  writeFileSync(join(root, "model", "config.json"), '{"model_type": "llama"}\n');
  writeLargeCheckpoint(join(root, "model", "model.safetensors"), 2, 32 * MiB);
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("two runs, one new output name", () => {
  for (const [label, input, output, manifest] of [
    ["a file", "model/model.safetensors", "out.safetensors", "out.safetensors.json"],
    ["a folder", "model", "out", "out/model.safetensors.json"],
  ] as const) {
    it(label, async () => {
      const runs = await Promise.all(
        (["--int8", "--int4"] as const).map((mode) => kquant(cli(), ["quantize", input, mode, "-o", output, "-q", "--threads", "1"], { cwd: root, limitMs: 60_000 })),
      );
      runs.forEach((r, k) => expectOrderly(r, `run ${k}`));
      const codes = runs.map((r) => r.code).sort();
      expect(codes, runs.map((r) => r.stderr).join("")).toEqual([0, 2]);
      const loser = runs.find((r) => r.code === 2)!;
      expect(loser.stderr).toMatch(/already exists/);
      const winnerMode = runs[0]!.code === 0 ? "int8" : "int4";
      const written = JSON.parse(readFileSync(join(root, manifest), "utf8")) as { tensors: Record<string, { mode: string }> };
      expect(Object.values(written.tensors).every((t) => t.mode.startsWith(winnerMode))).toBe(true);
      expect(readdirSync(root).filter((n) => n.endsWith(".tmp"))).toEqual([]);
      rmSync(join(root, output), { recursive: true, force: true });
      rmSync(join(root, "out.safetensors.json"), { force: true });
    });
  }
});
