/**
 * The verify page in a real headless Chromium (Debian's package, /usr/bin/chromium, installed by
 * test/report/ensure-chromium.sh, which .ci/run calls before `npm test`): it loads from file://
 * with every other request blocked and recorded, logs no error, and shows its charts and table.
 * A full-page screenshot is left in a temp folder (printed) as CI's artefact to look at.
 */
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO, runCli as kquant } from "../support/cli.js";
import { EVIL_NAME, makeFixture, type Fixture } from "./fixture.js";

const CHROMIUM = "/usr/bin/chromium";

let launched: Promise<Browser> | undefined;
let f: Fixture;
let screenshots: string;

/** The one browser of this file, launched on first use; a missing Chromium fails each test (never skips it). */
function browser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run \`bash test/report/ensure-chromium.sh\` (installs Debian's chromium package) before this test`);
  }
  launched ??= chromium.launch({ executablePath: CHROMIUM });
  return launched;
}

beforeAll(async () => {
  f = await makeFixture();
  screenshots = await mkdtemp(join(tmpdir(), "kquant-report-screenshots-"));
});

afterAll(async () => {
  await (await launched)?.close();
  await f.cleanup();
});

interface Loaded {
  page: Page;
  url: string;
  /** Every request the page made, the file itself included; all but the file were aborted. */
  requests: string[];
  /** Console errors and uncaught exceptions (a CSP violation is a console error too). */
  errors: string[];
  dialogs: string[];
}

async function load(path: string): Promise<Loaded> {
  const url = pathToFileURL(path).href;
  const context = await (await browser()).newContext({ viewport: { width: 1100, height: 900 }, deviceScaleFactor: 1 });
  const loaded: Loaded = { page: await context.newPage(), url, requests: [], errors: [], dialogs: [] };
  const { page } = loaded;
  await context.route("**/*", (route) => (route.request().url() === url ? route.continue() : route.abort()));
  context.on("request", (r) => loaded.requests.push(r.url()));
  page.on("websocket", (ws) => loaded.requests.push(ws.url()));
  page.on("console", (m) => {
    if (m.type() === "error") loaded.errors.push(m.text());
  });
  page.on("pageerror", (e) => loaded.errors.push(String(e)));
  page.on("dialog", (d) => {
    loaded.dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(url, { waitUntil: "load" });
  return loaded;
}

const box = (page: Page, selector: string) =>
  page.$$eval(selector, (els) => els.map((e) => ({ width: e.getBoundingClientRect().width, height: e.getBoundingClientRect().height })));

const firstColumn = (page: Page) => page.$$eval("#tensors tbody tr", (rows) => rows.map((r) => r.querySelector("td")!.textContent));

describe("the verify page in headless Chromium", () => {
  it("the request recorder works: a page that fetches an image is caught", async () => {
    const probe = join(f.dir, "probe.html");
    await writeFile(probe, `<!doctype html><title>probe</title><img src="http://127.0.0.1:9/probe.png">`);
    const { page, requests } = await load(probe);
    expect(requests).toContain("http://127.0.0.1:9/probe.png");
    await page.context().close();
  });

  it("the demo's int4 report: no request but the file, no console error, charts and table drawn", async () => {
    const quantized = join(f.dir, "demo.int4.safetensors");
    const html = join(f.dir, "demo-report.html");
    expect((await kquant("quantize", DEMO, "--int4", "-o", quantized, "-q")).code).toBe(0);
    const r = await kquant("verify", quantized, "--against", DEMO, "--html", html, "--json");
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { tensors: { name: string; metrics?: { sqnr_db: number | string; count: number } }[] };
    const measured = report.tensors.filter((t) => t.metrics).map((t) => ({ name: t.name, sqnr: Number(t.metrics!.sqnr_db), count: t.metrics!.count }));
    expect(measured).toHaveLength(9);

    const { page, url, requests, errors } = await load(html);
    expect(requests.filter((u) => u !== url)).toEqual([]);
    expect(errors).toEqual([]);

    const chart = await box(page, "#sqnr-chart svg");
    expect(chart).toHaveLength(1);
    expect(chart[0]!.width).toBeGreaterThan(500);
    expect(chart[0]!.height).toBeGreaterThan(100);
    const bars = await box(page, "#sqnr-chart rect.bar");
    expect(bars).toHaveLength(measured.length);
    for (const b of bars) expect(b.width * b.height).toBeGreaterThan(0);

    const figures = await page.$$eval("#histograms figure", (els) =>
      els.map((fig) => ({
        name: fig.getAttribute("data-name"),
        width: fig.querySelector("svg")!.getBoundingClientRect().width,
        height: fig.querySelector("svg")!.getBoundingClientRect().height,
        drawn: [...fig.querySelectorAll("rect.hist-bar")].filter((r) => r.getBoundingClientRect().height > 0).length,
        total: [...fig.querySelectorAll("rect.hist-bar")].reduce((s, r) => s + Number(r.getAttribute("data-count")), 0),
      })),
    );
    const worst = [...measured].sort((a, b) => a.sqnr - b.sqnr).slice(0, 4);
    expect(figures.map((x) => x.name)).toEqual(worst.map((t) => t.name));
    for (const [i, fig] of figures.entries()) {
      expect(fig.width * fig.height).toBeGreaterThan(0);
      expect(fig.drawn).toBeGreaterThan(10);
      expect(fig.total).toBe(worst[i]!.count);
    }

    expect(await firstColumn(page)).toHaveLength(report.tensors.length);
    // Sorting: SQNR ascending puts the worst first, descending the best, unmeasured rows last both times.
    const sqnrHeading = page.locator("#tensors th", { hasText: "SQNR" });
    await sqnrHeading.click();
    let names = await firstColumn(page);
    expect(names[0]).toBe(worst[0]!.name);
    expect(names.slice(measured.length)).toEqual(report.tensors.filter((t) => !t.metrics).map((t) => t.name));
    await sqnrHeading.click();
    names = await firstColumn(page);
    expect(names[0]).toBe([...measured].sort((a, b) => b.sqnr - a.sqnr)[0]!.name);
    expect(names.slice(measured.length)).toEqual(report.tensors.filter((t) => !t.metrics).map((t) => t.name));
    await page.locator("#tensors th", { hasText: "Tensor" }).click();

    const shot = join(screenshots, "verify-report.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`verify --html screenshot: ${shot}`);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it("a tensor named like a script shows as text and runs nothing", async () => {
    const html = join(f.dir, "evil-report.html");
    expect((await kquant("verify", f.quantized, "--against", f.source, "--html", html)).code).toBe(0);
    const { page, url, requests, errors, dialogs } = await load(html);
    expect(await page.title()).toBe(`kquant verify: ${f.quantized}`);
    expect(await firstColumn(page)).toContain(EVIL_NAME);
    expect(await page.$$eval("#sqnr-chart rect.bar", (els) => els.map((e) => e.getAttribute("data-name")))).toContain(EVIL_NAME);
    expect(await page.$$eval("script", (els) => els.length)).toBe(1);
    expect(requests.filter((u) => u !== url)).toEqual([]);
    expect(errors).toEqual([]);
    expect(dialogs).toEqual([]);
    await page.context().close();
  });
});
