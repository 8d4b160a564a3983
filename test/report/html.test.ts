import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VerifyReport } from "../../src/pipeline/read-back/verify.js";
import { runVerify } from "../../src/pipeline/read-back/verify.js";
import { escapeHtml } from "../../src/report/escape.js";
import { renderVerifyHtml } from "../../src/report/html.js";
import { EVIL_NAME, makeFixture, TENSORS, verifyWithHistograms, type Fixture } from "./fixture.js";

let f: Fixture;
let report: VerifyReport;
let html: string;

beforeAll(async () => {
  f = await makeFixture();
  report = await verifyWithHistograms(f);
  html = renderVerifyHtml(report);
});

afterAll(() => f.cleanup());

const count = (text: string, re: RegExp) => [...text.matchAll(re)].length;
const section = (id: string) => {
  const m = html.match(new RegExp(`<section id="${id}">([\\s\\S]*?)</section>`));
  if (!m) throw new Error(`no section #${id} in the page`);
  return m[1]!;
};
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const measured = () => report.tensors.filter((t) => t.metrics !== undefined);

describe("renderVerifyHtml", () => {
  it("escapes every tensor name: the page's only script is its own sort script", () => {
    expect(report.tensors.map((t) => t.name)).toContain(EVIL_NAME);
    expect(html).not.toContain("<script>document");
    expect(html).not.toContain(`"pwned"`);
    expect(count(html, /<script/g)).toBe(1);
    expect(html).toContain("&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;&amp;&quot;q&#39;.weight");
    // In attributes too (data-name of a bar and of a histogram): quotes cannot close the attribute.
    expect(html).toContain(`data-name="${escapeHtml(EVIL_NAME)}"`);
  });

  it("has one table row per tensor, the passthrough bias included", () => {
    const body = section("tensors").match(/<tbody>([\s\S]*)<\/tbody>/)![1]!;
    expect(count(body, /<tr /g)).toBe(TENSORS.length);
    expect(count(body, /<tr class="ok">/g)).toBe(TENSORS.length);
    expect(body).toMatch(/<td>layers\.0\.attn\.q\.bias<\/td><td>passthrough<\/td>/);
  });

  it("draws one SQNR bar per measured tensor, worst first", () => {
    const bars = [...section("sqnr-chart").matchAll(/<rect class="bar[^"]*" data-name="[^"]*" data-sqnr="([^"]+)"/g)].map((m) => Number(m[1]));
    expect(bars).toHaveLength(measured().length);
    expect(bars).toHaveLength(TENSORS.length - 1);
    expect(bars).toEqual([...bars].sort((a, b) => a - b));
    expect(Math.min(...bars)).toBe(report.summary.min_sqnr_db);
  });

  it("shows histograms of the 4 worst tensors whose bins add up to each tensor's element count", () => {
    const figures = [...section("histograms").matchAll(/<figure class="histogram" data-name="([^"]*)" data-count="(\d+)">([\s\S]*?)<\/figure>/g)];
    expect(figures).toHaveLength(4);
    const worst = [...measured()].sort((a, b) => a.metrics!.sqnrDb - b.metrics!.sqnrDb).slice(0, 4);
    expect(figures.map((m) => m[1])).toEqual(worst.map((t) => escapeHtml(t.name)));
    for (const [i, m] of figures.entries()) {
      const bins = [...m[3]!.matchAll(/<rect class="hist-bar" data-count="(\d+)"/g)].map((b) => Number(b[1]));
      const shape = TENSORS.find((t) => t.name === worst[i]!.name)!.shape;
      expect(bins).toHaveLength(41);
      expect(sum(bins)).toBe(shape[0]! * shape[1]!);
      expect(Number(m[2])).toBe(shape[0]! * shape[1]!);
    }
  });

  it("asks for nothing from outside: no URL, a CSP that forbids loading, no external font", () => {
    expect(html).toContain(`content="default-src 'none';`);
    const urls = [...html.matchAll(/(?:src|href)\s*=\s*"([^"]*)"/g)].map((m) => m[1]);
    expect(urls).toEqual(["data:,"]);
    expect(html).not.toMatch(/url\(|@import|@font-face|https?:\/\/(?!www\.w3\.org\/2000\/svg")/);
  });

  it("is the same bytes for the same inputs (no clock, nothing from the environment)", async () => {
    expect(renderVerifyHtml(await verifyWithHistograms(f))).toBe(html);
  });

  it("a failing run shows FAILED, marks the rows and draws the threshold line", async () => {
    const failing = renderVerifyHtml(await verifyWithHistograms(f, { minSqnr: 99 }));
    expect(failing).toMatch(/<p class="status fail">FAILED: 1 of 7 tensors pass/);
    expect(count(failing, /<tr class="fail">/g)).toBe(6);
    expect(count(failing, /<line class="threshold"/g)).toBe(1);
  });

  it("without --against: the table alone, and a note that nothing was measured", async () => {
    const plain = renderVerifyHtml(await runVerify(f.quantized));
    expect(plain).toContain("No tensor was measured: give --against ORIGINAL.");
    expect(plain).not.toContain("<svg");
    expect(count(plain, /<tr class="ok">/g)).toBe(TENSORS.length);
  });
});
