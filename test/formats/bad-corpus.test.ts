import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { makeCorpus } from "../../fixtures/bad/make-corpus.mjs";
import { KquantError } from "../../src/errors.js";
import { openTensors } from "../../src/formats/open.js";
import { tempDir } from "./helpers.js";

const corpus = fileURLToPath(new URL("../../fixtures/bad/files", import.meta.url));
const expectations = JSON.parse(await readFile(join(corpus, "expectations.json"), "utf8")) as Record<string, string>;

/** Opens and reads every tensor: some damage (a bad CRC) only shows when the data is read. */
async function readEverything(path: string): Promise<void> {
  const r = await openTensors(path);
  try {
    for (const t of r.tensors) await r.read(t.name);
  } finally {
    await r.close();
  }
}

describe("malformed-file corpus", () => {
  it("is what make-corpus.mjs produces", async () => {
    const dir = await tempDir();
    expect(makeCorpus(dir)).toEqual(expectations);
    const made = (await readdir(dir)).sort();
    expect((await readdir(corpus)).sort()).toEqual(made);
    for (const f of made) expect([f, await readFile(join(corpus, f))]).toEqual([f, await readFile(join(dir, f))]);
    expect(Object.keys(expectations).length).toBeGreaterThanOrEqual(40);
  });

  for (const [file, expected] of Object.entries(expectations)) {
    it(`refuses ${file}`, async () => {
      const before = (await readdir(corpus)).sort();
      const path = join(corpus, file);
      let error: unknown = null;
      try {
        await readEverything(path);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(KquantError);
      const message = (error as Error).message;
      expect(message).toContain(expected);
      expect(message.startsWith(`${path}: `) || message.startsWith(join(corpus, ""))).toBe(true);
      expect(message).not.toContain("\n");
      expect((await readdir(corpus)).sort()).toEqual(before);
    });
  }
});
