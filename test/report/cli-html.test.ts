import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli as kquant } from "../support/cli.js";
import { makeFixture, TENSORS, type Fixture } from "./fixture.js";

let f: Fixture;

beforeAll(async () => {
  f = await makeFixture();
});

afterAll(() => f.cleanup());

describe("kquant verify --html", () => {
  it("writes the page, says where, and leaves no temporary file", async () => {
    const page = join(f.dir, "report.html");
    const r = await kquant("verify", f.quantized, "--against", f.source, "--html", page);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^HTML report: ${page.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"));
    const html = await readFile(page, "utf8");
    expect(html).toMatch(/^<!doctype html>/);
    expect([...html.matchAll(/<rect class="hist-bar"/g)]).toHaveLength(4 * 41);
    expect((await readdir(f.dir)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("refuses to overwrite an existing file without --force (exit 2, file untouched), overwrites with it", async () => {
    const page = join(f.dir, "existing.html");
    await writeFile(page, "keep me");
    const r = await kquant("verify", f.quantized, "--against", f.source, "--html", page);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${page}: output already exists (use --force to overwrite it)`);
    expect(r.stdout).toBe("");
    expect(await readFile(page, "utf8")).toBe("keep me");
    const forced = await kquant("verify", f.quantized, "--against", f.source, "--html", page, "--force");
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(page, "utf8")).toMatch(/^<!doctype html>/);
  });

  it("refuses to write the page over an input", async () => {
    const r = await kquant("verify", f.quantized, "--against", f.source, "--html", f.source, "--force");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("the output would overwrite the input");
  });

  it("a failing gate still writes the page (exit 1); --json keeps stdout one JSON document", async () => {
    const page = join(f.dir, "failing.html");
    const r = await kquant("verify", f.quantized, "--against", f.source, "--min-sqnr", "99", "--json", "--html", page);
    expect(r.code).toBe(1);
    const json = JSON.parse(r.stdout);
    expect(json.ok).toBe(false);
    expect(json.tensors.filter((t: { error_histogram?: unknown }) => t.error_histogram)).toHaveLength(TENSORS.length - 1);
    expect(await readFile(page, "utf8")).toContain(`<p class="status fail">FAILED: 1 of ${TENSORS.length} tensors pass`);
  });

  it("without --html, verify counts no histogram", async () => {
    const json = JSON.parse((await kquant("verify", f.quantized, "--against", f.source, "--json")).stdout);
    expect(json.tensors.some((t: { error_histogram?: unknown }) => t.error_histogram)).toBe(false);
  });
});
