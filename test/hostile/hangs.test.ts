/**
 * Issue #22 item 5 (and the symlink loop of item 7): nothing in a file or a pattern can hold a
 * run. A glob of many stars (--include, --exclude, a recipe, --filter) matches in polynomial time;
 * a FIFO in a model folder or given as input is refused, not opened for reading; a link loop in a
 * folder is one line. Every run has a time limit; the input and every file around it stay as they were.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileGlob } from "../../src/plan/glob.js";
import { writeModelFolder } from "../layouts/model-folder.js";
import { gaussian, writeSafetensors } from "../support/files.js";
import { builtCli, caseDir, changes, expectOrderly, kquant, snapshot } from "./harness.js";

const cli = builtCli();

/** A pattern whose regular expression (`^.*a.*a…b$`) backtracks through C(80, 25) ways on 80 a's. */
const EVIL = `${"*a".repeat(25)}*b`;
const LONG_NAME = "a".repeat(80);

describe("globs match in polynomial time", () => {
  it("compileGlob agrees with the regular expression on seeded patterns and names", () => {
    let s = 12345;
    const rand = (n: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const pick = (alphabet: string, n: number) => Array.from({ length: n }, () => alphabet[rand(alphabet.length)]).join("");
    for (let k = 0; k < 3000; k++) {
      const pattern = pick("ab.*?", rand(7));
      const name = pick("ab.", rand(8));
      const re = new RegExp(`^${Array.from(pattern, (c) => (c === "*" ? ".*" : c === "?" ? "." : c === "." ? "\\." : c)).join("")}$`, "s");
      expect(compileGlob(pattern).test(name), `${pattern} on ${name}`).toBe(re.test(name));
    }
  });

  const runs: [string, (dir: string) => string[]][] = [
    ["quantize --include", () => ["quantize", "m.safetensors", "--int8", "--include", EVIL, "--dry-run"]],
    ["quantize --exclude", () => ["quantize", "m.safetensors", "--int8", "--exclude", EVIL, "--dry-run"]],
    ["quantize --recipe", (dir) => {
      writeFileSync(join(dir, "r.json"), JSON.stringify({ rules: [{ match: EVIL, mode: "int8" }, { match: "*", skip: true }] }));
      return ["quantize", "m.safetensors", "--recipe", "r.json", "--dry-run"];
    }],
    ["inspect --filter", () => ["inspect", "m.safetensors", "--filter", EVIL]],
  ];
  for (const [label, args] of runs) {
    it(label, async () => {
      const root = caseDir("glob");
      try {
        await writeSafetensors(join(root, "m.safetensors"), [{ name: LONG_NAME, dtype: "F32", shape: [4, 4], data: gaussian(16) }]);
        const a = args(root);
        const before = snapshot(root);
        const r = await kquant(cli(), a, { cwd: root, limitMs: 15_000 });
        expectOrderly(r, label);
        // Each got past the pattern: it matched nothing (the recipe's second rule skipped the tensor).
        expect(r.stderr).toMatch(/no rule matched|skipped by recipe rule 2|no tensor matches|(rule )?--exclude .* matched no tensor|^$/);
        expect(changes(before, snapshot(root))).toEqual([]);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});

describe("only regular files are read or copied", () => {
  const cases: [string, (root: string) => Promise<string[]>, RegExp][] = [
    ["a FIFO beside the weights in a model folder", async (root) => {
      await writeModelFolder(join(root, "model"));
      execFileSync("mkfifo", [join(root, "model", "pipe")]);
      return ["quantize", "model", "--int8", "-o", "out"];
    }, /model\/pipe: not a regular file/],
    ["a FIFO as config.json", async (root) => {
      await writeModelFolder(join(root, "model"));
      rmSync(join(root, "model", "config.json"));
      execFileSync("mkfifo", [join(root, "model", "config.json")]);
      return ["quantize", "model", "--int8", "-o", "out"];
    }, /config\.json: not a regular file/],
    ["a FIFO as the input", async (root) => {
      execFileSync("mkfifo", [join(root, "model", "in.safetensors")]);
      return ["inspect", "model/in.safetensors"];
    }, /in\.safetensors: not a regular file/],
    ["a FIFO as the recipe", async (root) => {
      await writeModelFolder(join(root, "model"));
      execFileSync("mkfifo", [join(root, "model", "r.json")]);
      return ["quantize", "model/model.safetensors", "--recipe", "model/r.json", "-o", "out.safetensors"];
    }, /r\.json: not a regular file/],
    ["a link loop in a model folder", async (root) => {
      await writeModelFolder(join(root, "model"));
      symlinkSync("loop", join(root, "model", "loop"));
      return ["quantize", "model", "--int8", "-o", "out"];
    }, /model\/loop: a link loop/],
    ["a folder linked into itself", async (root) => {
      await writeModelFolder(join(root, "model"));
      mkdirSync(join(root, "model", "sub"));
      symlinkSync("..", join(root, "model", "sub", "up"));
      return ["quantize", "model", "--int8", "-o", "out"];
    }, /a folder linked into itself/],
  ];
  for (const [label, make, message] of cases) {
    it(label, async () => {
      const root = caseDir("fifo");
      try {
        mkdirSync(join(root, "model"));
        const args = await make(root);
        const before = snapshot(root);
        const r = await kquant(cli(), args, { cwd: root, limitMs: 15_000 });
        expectOrderly(r, label);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(message);
        expect(changes(before, snapshot(root))).toEqual([]);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});
