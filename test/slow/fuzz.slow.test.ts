/**
 * The slow suite's share of the fuzz pass (test/hostile/fuzz.ts): 3,000 seeded mutants in process
 * and 300 through the built CLI (each with a time limit: a hang fails), none of the default
 * suite's seeds. KQUANT_FUZZ_SLOW=<count> runs more in process.
 */
import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { builtCli, caseDir, kquant } from "../hostile/harness.js";
import { runFuzz } from "../hostile/fuzz.js";

const COUNT = Number(process.env.KQUANT_FUZZ_SLOW ?? 3000);
const cli = builtCli();

describe("fuzz, slow share", () => {
  it(`${COUNT} mutants in process`, async () => {
    const base = caseDir("fuzz-slow");
    try {
      const { failures } = await runFuzz(base, COUNT, 100_000);
      expect(failures).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 1_800_000);

  it("300 mutants through the built CLI, each within 20 s", async () => {
    const base = caseDir("fuzz-built");
    try {
      const { failures } = await runFuzz(base, 300, 200_000, async (args, cwd) => {
        const r = await kquant(cli(), args, { cwd, limitMs: 20_000 });
        return { code: r.hung ? -1 : (r.code ?? -1), stdout: r.stdout, stderr: r.hung ? `hung: ${r.stderr}` : r.stderr };
      });
      expect(failures).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 1_800_000);
});
