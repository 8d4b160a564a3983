#!/usr/bin/env node
/**
 * The screenshots in docs/web.md, taken in Debian's headless Chromium from the page the built
 * `kquant web` serves: `npm run build && node scripts/web-screenshots.mjs`. Each step of a run on
 * the demo, the choose step of --scheme on a model folder (the demo with a config.json), a
 * malformed file's error, and the page at 360 px wide, as docs/web/*.png.
 */
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "docs", "web");
const DEMO = join(ROOT, "fixtures", "demo", "tiny-llama.safetensors");
mkdirSync(OUT, { recursive: true });

const server = spawn(process.execPath, [join(ROOT, "bin", "kquant.js"), "web"], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise((resolve) => server.stdout.on("data", (d) => { const m = /http:\/\/\S+\//.exec(String(d)); if (m) resolve(m[0]); }));
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium" });
const work = mkdtempSync(join(tmpdir(), "kquant-screenshots-"));
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 }, deviceScaleFactor: 1, colorScheme: "light" });
  await page.goto(url);
  const shot = (name, selector) => page.locator(selector).screenshot({ path: join(OUT, `${name}.png`) });

  await page.getByTestId("file-input").setInputFiles(DEMO);
  await page.waitForFunction(() => document.body.dataset.input === "ready");
  await page.getByTestId("filter").fill("layers.0");
  await shot("1-input", "#step-input");
  await page.getByTestId("filter").fill("");

  await page.getByTestId("mode").selectOption("int4");
  await page.getByTestId("block-size").fill("32");
  await page.getByTestId("recipe").fill('{ "rules": [\n  { "match": "lm_head.*", "skip": true }\n] }');
  await page.waitForFunction(() => document.querySelector("[data-testid=summary]")?.textContent?.includes("recipe-int4-g32"));
  await shot("2-choose", "#step-choose");

  await page.getByTestId("quantize").click();
  await page.waitForFunction(() => document.body.dataset.state === "done");
  await shot("3-run", "#step-run");

  await page.waitForSelector("[data-testid=report] iframe");
  await page.waitForTimeout(300);
  await shot("4-check", "#step-check");

  const model = join(work, "tiny-llama");
  mkdirSync(model);
  copyFileSync(DEMO, join(model, "model.safetensors"));
  writeFileSync(join(model, "config.json"), `${JSON.stringify({ architectures: ["LlamaForCausalLM"], model_type: "llama" }, null, 2)}\n`);
  await page.getByTestId("folder-input").setInputFiles(model);
  await page.waitForFunction(() => document.body.dataset.input === "ready");
  await page.getByTestId("recipe").fill("");
  await page.getByTestId("mode").selectOption("scheme");
  await page.getByTestId("scheme").selectOption("MXFP4A16");
  await page.getByTestId("ignore").fill("lm_head");
  await page.waitForFunction(() => document.querySelector("[data-testid=summary]")?.textContent?.includes("tiny-llama-mxfp4a16/"));
  await shot("2b-choose-scheme", "#step-choose");

  await page.getByTestId("file-input").setInputFiles(join(ROOT, "fixtures", "bad", "files", "st-overlapping.safetensors"));
  await page.waitForFunction(() => document.body.dataset.input === "failed");
  await shot("5-error", "main");

  const narrow = await browser.newPage({ viewport: { width: 360, height: 1400 }, deviceScaleFactor: 1, colorScheme: "light" });
  await narrow.goto(url);
  await narrow.getByTestId("file-input").setInputFiles(DEMO);
  await narrow.waitForFunction(() => document.body.dataset.input === "ready");
  await narrow.waitForSelector("[data-testid=summary] table");
  await narrow.screenshot({ path: join(OUT, "6-narrow-360px.png") });
  console.log(`screenshots in ${OUT}`);
} finally {
  await browser.close();
  server.kill("SIGINT");
  rmSync(work, { recursive: true, force: true });
}
