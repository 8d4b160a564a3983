/**
 * The default suite's share of the fuzz pass (test/hostile/fuzz.ts): a few hundred seeded header
 * mutants of every input kind, run in process; the slow suite runs thousands, and the built CLI on
 * a share of them (test/slow/fuzz.slow.test.ts). KQUANT_FUZZ=<count> runs more.
 */
import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { caseDir } from "./harness.js";
import { runFuzz } from "./fuzz.js";

const COUNT = Number(process.env.KQUANT_FUZZ ?? 150);

describe("fuzz: mutated headers of every input kind", () => {
  it(`${COUNT} mutants: exit 0/1/2, one line, nothing left, nothing else touched`, async () => {
    const base = caseDir("fuzz");
    try {
      const { failures, codes } = await runFuzz(base, COUNT, 1);
      expect(failures).toEqual([]);
      // The mutants reach past the parsers: some runs succeed, some are refused.
      expect(Object.keys(codes).some((k) => k.endsWith("→ 0"))).toBe(true);
      expect(Object.keys(codes).some((k) => k.endsWith("→ 2"))).toBe(true);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 300_000);
});
