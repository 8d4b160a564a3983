/**
 * Every command README.md and docs/*.md show is run here, on the files it names, and the output
 * they show must be what it prints (doc-blocks.ts). Commands run with `kquant` (and `npx kquant`)
 * meaning this checkout's built CLI, in a scratch folder where `fixtures/` is the repository's;
 * blocks of one page share the folder, in page order.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docBlocks, withOutputs } from "./doc-blocks.js";

/** DOCS_UPDATE=1 writes what the commands print into the pages' output blocks (review the diff). */
const UPDATE = process.env.DOCS_UPDATE === "1";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const pages = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

let shimDir: string;
beforeAll(() => {
  // The pages show the CLI users run: the built bundle. Rebuild it when the sources are newer.
  const bundle = join(ROOT, "dist/kquant.cjs");
  let built = 0;
  try {
    built = statSync(bundle).mtimeMs;
  } catch {}
  if (built < newestMtime(join(ROOT, "src"))) execFileSync("npm", ["run", "--silent", "build"], { cwd: ROOT, stdio: "ignore" });
  shimDir = mkdtempSync(join(tmpdir(), "kquant-docs-bin-"));
  writeFileSync(join(shimDir, "kquant"), `#!/bin/sh\nexec node "${join(ROOT, "bin/kquant.js")}" "$@"\n`);
  chmodSync(join(shimDir, "kquant"), 0o755);
}, 120_000);
afterAll(() => rmSync(shimDir, { recursive: true, force: true }));

for (const page of pages) {
  describe(page, () => {
    const markdown = readFileSync(join(ROOT, page), "utf8");
    const blocks = docBlocks(page, markdown);
    const printedBy = new Map<number, string>();
    let work: string;
    beforeAll(() => {
      work = mkdtempSync(join(tmpdir(), "kquant-docs-"));
      // A fresh clone's state: fixtures/ and nothing else (no out/: the commands make what they write into).
      symlinkSync(join(ROOT, "fixtures"), join(work, "fixtures"));
    });
    afterAll(() => {
      rmSync(work, { recursive: true, force: true });
      if (UPDATE) writeFileSync(join(ROOT, page), withOutputs(markdown, blocks, printedBy));
    });

    it("runs every command block, or says why not", () => {
      for (const b of blocks) expect(b.notRun ?? "run", `${page}:${b.line}`).not.toBe("");
    });

    for (const b of blocks.filter((x) => x.notRun === undefined)) {
      it(`runs the commands at line ${b.line}${b.output !== undefined ? " and prints what it shows" : ""}`, () => {
        const script = `${b.output === undefined ? "set -e\n" : ""}npx() { if [ "$1" = kquant ]; then shift; kquant "$@"; else command npx "$@"; fi; }\n${b.commands}\n`;
        const r = spawnSync("bash", ["-c", script], {
          cwd: work,
          encoding: "utf8",
          env: { ...process.env, PATH: `${shimDir}:${process.env.PATH}`, NO_COLOR: "1", COLUMNS: "100" },
          timeout: 120_000,
        });
        const printed = `${r.stdout}${r.stderr}`;
        const trim = (s: string) => s.split("\n").map((l) => l.trimEnd()).join("\n").trim();
        printedBy.set(b.line, trim(printed.split(work).join(".")));
        if (b.output === undefined) {
          expect(r.status, `${page}:${b.line} exited ${r.status}:\n${printed}`).toBe(0);
        } else {
          expect(printedBy.get(b.line), `${page}:${b.line}`).toBe(trim(b.output));
        }
      });
    }
  });
}
