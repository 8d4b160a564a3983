/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The page (web/) in Debian's headless Chromium, built by scripts/bundle-web.mjs and served as
 * `kquant web` serves it (src/serve/page-server.ts): it quantizes the demo and a generated
 * multi-tensor file through its data-testid hooks, and the downloaded files are byte for byte
 * `kquant quantize`'s with the same options; no request leaves its origin; cancel leaves nothing;
 * a malformed file shows the CLI's one-line message. Every mode, backend and layout of both
 * inputs: test/slow/dist-web.slow.test.ts, on the built CLI's `kquant web`.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeNpz } from "../../src/formats/npz.js";
import { openTensors } from "../../src/formats/open.js";
import { pagePolicy } from "../../src/serve/page-server.js";
import { runCli } from "../support/cli.js";
import { formatBytes } from "../../src/units.js";
import { writeModelFolder } from "../layouts/model-folder.js";
import { choose, chooseFolderMode, closeBrowser, copyFolder, dropFolder, flagsOf, folderFlagsOf, hashesUnder, label, loadPage, makeInputs, outputsBeside, pageWithPickers, pick, pickFolder, privateFiles, runInPage, runToEnd, serveFreshPage, WAIT_MS, writeBigFile, writeShardedFiles, type Case, type FolderCase, type Loaded } from "../web/page-driver.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const CORPUS = join(REPO, "fixtures", "bad", "files");

let work: string;
let server: Server;
let url: string;
let inputs: { demo: string; multi: string };
let shared: Loaded;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "kquant-web-"));
  ({ server, url } = await serveFreshPage(join(work, "site")));
  inputs = makeInputs(work);
  shared = await loadPage(url);
});

afterAll(async () => {
  await closeBrowser();
  await new Promise((r) => server?.close(r));
  rmSync(work, { recursive: true, force: true });
});

let n = 0;
/** `kquant quantize <copy of input> <flags>` in a fresh folder: its outputs' names and sha256 (or its error line). */
async function cli(input: string, c: Case): Promise<{ files: Record<string, string> } | { error: string }> {
  const dir = join(work, `cli-${n++}`);
  mkdirSync(dir);
  const copy = join(dir, basename(input));
  copyFileSync(input, copy);
  const r = await runCli("quantize", copy, ...flagsOf(c), "-q");
  if (r.code !== 0) return { error: r.stderr.trim().replaceAll(`${dir}/`, "") };
  return { files: hashesUnder(dir, new Set([basename(input)])) };
}

async function pageRun(input: string, c: Case): Promise<{ files: Record<string, string> } | { error: string }> {
  const { page } = shared;
  if ((await page.evaluate(() => document.body.dataset.picked)) !== input) {
    expect(await pick(page, input)).toBe("ready");
    await page.evaluate((p) => (document.body.dataset.picked = p), input);
  }
  await choose(page, c);
  const saveDir = join(work, `page-${n++}`);
  mkdirSync(saveDir);
  return runInPage(page, saveDir);
}

const CASES: Case[] = [
  { mode: "int8", backend: "tensorflow", layout: "kquant" },
  { mode: "int4", backend: "tensorflow", layout: "kquant" },
  { mode: "int4", blockSize: 16, backend: "torch", layout: "kquant" },
  { mode: "float8", float8: "e4m3", backend: "jax", layout: "kquant" },
  { mode: "float8", float8: "e5m2", backend: "numpy", layout: "kquant" },
  { mode: "int8", backend: "torch", layout: "keras" },
  { mode: "int4", blockSize: 16, backend: "tensorflow", layout: "compressed-tensors" },
  { mode: "int4", blockSize: 16, backend: "jax", layout: "mlx" },
  { mode: "int8", blockSize: 32, backend: "numpy", layout: "mlx" },
];

describe("the page served as kquant web serves it", () => {
  it("loads with its policy, requests nothing but its own files, and logs no error", async () => {
    const res = await fetch(url);
    const policy = res.headers.get("content-security-policy")!;
    expect(policy).toBe(pagePolicy(await res.text()));
    expect(policy).toMatch(/^default-src 'none'; script-src 'self' 'wasm-unsafe-eval' 'sha256-[^']+'; .*connect-src 'none'/);
    // Cross-origin isolated: the worker pool's shared memory (web/pool.ts).
    expect([res.headers.get("cross-origin-opener-policy"), res.headers.get("cross-origin-embedder-policy")]).toEqual(["same-origin", "require-corp"]);
    expect((await fetch(`${url}../etc/passwd`)).status).toBe(404);
    const { page, requests, errors } = shared;
    expect(await page.getByTestId("quantize").isDisabled()).toBe(true);
    for (const id of ["file-input", "folder-input", "mode", "block-size", "float8-format", "backend", "layout", "recipe", "summary", "save-as", "save-into", "save-clear", "destination", "threads", "quantize", "cancel", "progress", "download", "manifest-download", "error", "report"]) {
      expect(await page.getByTestId(id).count(), id).toBe(1);
    }
    expect(await page.getByTestId("mode").locator("option").evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(["int8", "int4", "float8", "scheme", "mlx", ""]);
    expect(requests.filter((r) => !r.startsWith(url))).toEqual([]);
    expect(errors).toEqual([]);
  });

  it("shows the inspect table and the dry-run summary of a picked file", async () => {
    const { page } = shared;
    expect(await pick(page, inputs.demo)).toBe("ready");
    await page.evaluate((p) => (document.body.dataset.picked = p), inputs.demo);
    const names = (await openTensors(inputs.demo).then(async (r) => (await r.close(), r.tensors))).map((t) => t.name);
    expect(await page.locator("#tensors tbody tr td.name").allTextContents()).toEqual(names);
    await page.getByTestId("filter").fill("MLP");
    expect(await page.locator("#tensors tbody tr td.name").allTextContents()).toEqual(names.filter((t) => t.includes("mlp")));
    await page.getByTestId("filter").fill("");
    await choose(page, { mode: "int8", backend: "tensorflow", layout: "kquant" });
    await page.waitForFunction(() => document.querySelector("[data-testid=summary]")?.textContent?.includes("tiny-llama.int8.safetensors"));
    const dry = await runCli("quantize", inputs.demo, "--int8", "--dry-run", "--json");
    const bits = (JSON.parse(dry.stdout) as { summary: { bits_per_weight: number } }).summary.bits_per_weight.toFixed(2);
    expect(await page.getByTestId("summary").textContent()).toContain(bits);
  });

  for (const which of ["demo", "multi"] as const) {
    for (const c of CASES) {
      it(`${which}: ${label(c)} downloads the CLI's bytes`, async () => {
        const want = await cli(inputs[which], c);
        const got = await pageRun(inputs[which], c);
        expect(got).toEqual(want);
        if ("files" in want) expect(Object.keys(want.files).length).toBeGreaterThanOrEqual(2);
      });
    }
  }

  it("the Check step shows the report kquant verify --html writes, and offers it as a download", async () => {
    const { page } = shared;
    const c: Case = { mode: "int4", blockSize: 16, backend: "tensorflow", layout: "kquant" };
    const dir = join(work, `verify-${n++}`);
    mkdirSync(dir);
    expect(await pageRun(inputs.multi, c)).toHaveProperty("files");
    await page.waitForSelector("[data-testid=report] iframe");
    const shown = await page.locator("[data-testid=report] iframe").getAttribute("srcdoc");
    const frame = page.frameLocator("[data-testid=report] iframe");
    expect(await frame.locator("#tensors tbody tr").count()).toBe(7);
    expect(await frame.locator("#sqnr-chart svg").count()).toBe(1);
    // The CLI's page for the same output, against the same input.
    copyFileSync(inputs.multi, join(dir, "multi.safetensors"));
    expect((await runCli("quantize", join(dir, "multi.safetensors"), ...flagsOf(c), "-q")).code).toBe(0);
    const out = join(dir, "multi.int4-g16.safetensors");
    const r = await runCli("verify", out, "--against", join(dir, "multi.safetensors"), "--html", join(dir, "r.html"));
    expect(r.code).toBe(0);
    expect(shown).toBe(readFileSync(join(dir, "r.html"), "utf8").replaceAll(`${dir}/`, ""));
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("report-download").click()]);
    expect(download.suggestedFilename()).toBe("multi.int4-g16.verify.html");
    expect(shared.errors).toEqual([]);
  });

  it("a sharded checkpoint: the index picked with its shards gives the CLI's shards, index and manifest", async () => {
    const dir = join(work, "sharded");
    mkdirSync(dir);
    const files = writeShardedFiles(dir);
    const c: Case = { mode: "int8", backend: "tensorflow", layout: "kquant" };
    const cliDir = join(work, `cli-${n++}`);
    mkdirSync(cliDir);
    for (const f of files) copyFileSync(f, join(cliDir, basename(f)));
    expect((await runCli("quantize", join(cliDir, basename(files[0]!)), ...flagsOf(c), "-q")).code).toBe(0);
    const want = hashesUnder(cliDir, new Set(files.map((f) => basename(f))));
    expect(Object.keys(want)).toHaveLength(4);
    const { page } = shared;
    expect(await pick(page, files)).toBe("ready");
    await page.evaluate(() => (document.body.dataset.picked = "sharded"));
    expect(await page.locator("#tensors tbody tr").count()).toBe(7);
    await choose(page, c);
    const saveDir = join(work, `page-${n++}`);
    mkdirSync(saveDir);
    expect(await runInPage(page, saveDir)).toEqual({ files: want });
  });

  it("a model folder: --scheme W4A16 and --mlx affine give the CLI's folder, with their dry runs; --scheme on a file is the CLI's refusal", async () => {
    const model = join(work, "tiny-llama");
    mkdirSync(model);
    await writeModelFolder(model);
    const { page } = shared;
    expect(await pickFolder(page, model)).toBe("ready");
    await page.evaluate(() => (document.body.dataset.picked = "tiny-llama"));
    const summary = page.getByTestId("summary");
    const cases: FolderCase[] = [
      { mode: "scheme", scheme: "W4A16", ignore: ["lm_head"] },
      { mode: "mlx", mlxMode: "affine", bits: 4, blockSize: 64 },
    ];
    for (const c of cases) {
      const dir = join(work, `cli-${n++}`);
      mkdirSync(dir);
      const copy = copyFolder(model, dir);
      const r = await runCli("quantize", copy, ...folderFlagsOf(c), "-q");
      expect(r.code, r.stderr).toBe(0);
      const want = outputsBeside(dir, copy);
      expect(Object.keys(want).length).toBeGreaterThanOrEqual(4);
      await chooseFolderMode(page, c);
      const out = c.mode === "scheme" ? "tiny-llama-w4a16" : "tiny-llama-mlx-affine-b4-g64";
      await page.waitForFunction((o) => document.querySelector("[data-testid=summary]")?.textContent?.includes(`Would write the folder ${o}/`), out);
      expect(await page.getByTestId("layout").isDisabled()).toBe(true);
      if (c.mode === "mlx") {
        const dry = JSON.parse((await runCli("quantize", copy, ...folderFlagsOf(c), "--dry-run", "--json")).stdout) as { bytes_after: number; quantized: number };
        expect(await summary.textContent()).toContain(formatBytes(dry.bytes_after));
      } else {
        expect(await summary.textContent()).toContain("pack-quantized");
      }
      const saveDir = join(work, `page-${n++}`);
      mkdirSync(saveDir);
      expect(await runInPage(page, saveDir), JSON.stringify(c)).toEqual({ files: want });
      // The Check step: kquant verify OUT_DIR --against MODEL_DIR's report, for both folders.
      await page.waitForSelector("[data-testid=report] iframe");
      expect(await page.frameLocator("[data-testid=report] iframe").locator("#tensors tbody tr").count()).toBeGreaterThan(0);
      // The CLI's warnings for the weights that stay float, after the run's progress line.
      const warned = [...r.stderr.matchAll(/^kquant: warning: (\S+) stays float/gm)].map((m) => m[1]!);
      expect(warned.length > 0).toBe(c.mode === "scheme");
      const said = (await page.locator("#progress-text").textContent())!;
      for (const name of warned) expect(said).toContain(`${name} (`);
    }
    expect(await pick(page, inputs.demo)).toBe("ready");
    await page.evaluate((p) => (document.body.dataset.picked = p), inputs.demo);
    await chooseFolderMode(page, cases[0]!);
    const refused = await runCli("quantize", inputs.demo, ...folderFlagsOf(cases[0]!));
    expect(refused.code).toBe(2);
    expect(await runInPage(page, work)).toEqual({ error: refused.stderr.trim().replaceAll(`${join(work, "demo")}/`, "") });
    expect(shared.errors).toEqual([]);
  });

  it(".npz, stored and deflated: the page reads it by File.slice and downloads the CLI's bytes", async () => {
    // The multi-tensor file's numpy-typed tensors as an .npz (kquant's own writer: numpy.savez's layout; numpy's own files: the slow suite).
    const source = await openTensors(inputs.multi);
    const entries = [];
    try {
      for (const t of source.tensors.filter((x) => x.dtype !== "BF16")) entries.push({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: await source.read(t.name) });
    } finally {
      await source.close();
    }
    for (const compress of [false, true]) {
      const npz = join(work, compress ? "deflated" : "stored", "weights.npz");
      mkdirSync(join(npz, ".."));
      await writeNpz(npz, entries, { compress });
      const names = (await openTensors(npz).then(async (r) => (await r.close(), r.tensors))).map((t) => t.name);
      expect(await pick(shared.page, npz)).toBe("ready");
      await shared.page.evaluate((p) => (document.body.dataset.picked = p), npz);
      expect(await shared.page.locator("#tensors tbody tr td.name").allTextContents()).toEqual(names);
      // One mode each here; every mode on numpy's own files: the slow suite.
      const c = compress ? CASES[2]! : CASES[0]!;
      const want = await cli(npz, c);
      expect(Object.keys((want as { files: object }).files ?? {}).length, JSON.stringify(want)).toBeGreaterThanOrEqual(2);
      expect(await pageRun(npz, c), `${compress ? "deflated" : "stored"} ${label(c)}`).toEqual(want);
    }
  });

  it("a malformed .npz (fixtures/bad, and a CRC-32 mismatch found when it is read) shows the CLI's message", async () => {
    const { page } = shared;
    for (const name of ["npz-not-a-zip.npz", "npz-truncated.npz", "npz-member-not-npy.npz", "npz-member-lies.npz", "npz-bad-member.npz", "npz-bad-deflate.npz"]) {
      const r = await runCli("inspect", join(CORPUS, name));
      expect(r.code, name).toBe(2);
      expect(await pick(page, join(CORPUS, name)), name).toBe("failed");
      expect(await page.getByTestId("error").textContent()).toBe(r.stderr.trim().replaceAll(`${CORPUS}/`, ""));
    }
    // A stored member whose data no longer matches its CRC-32 (found when the run reads it).
    const c: Case = { mode: "int8", backend: "tensorflow", layout: "kquant" };
    const bad = join(work, "bad-crc", "w.npz");
    mkdirSync(join(bad, ".."));
    const values = Float32Array.from({ length: 64 }, (_, i) => i / 64 - 0.5);
    await writeNpz(bad, [{ name: "w", dtype: "F32", shape: [8, 8], bytes: new Uint8Array(values.buffer) }]);
    const bytes = readFileSync(bad);
    bytes[bytes.indexOf(Buffer.from(values.buffer)) + 100]! ^= 0x40;
    writeFileSync(bad, bytes);
    const want = await cli(bad, c);
    expect(want).toHaveProperty("error", expect.stringContaining("CRC-32 mismatch"));
    expect(await pageRun(bad, c)).toEqual(want);
    await page.evaluate(() => delete document.body.dataset.picked);
  });

  it("a folder without weights, and two unrelated files, say so in one line", async () => {
    const { page } = shared;
    const empty = join(work, "no-weights");
    mkdirSync(empty);
    writeFileSync(join(empty, "config.json"), "{}\n");
    await page.getByTestId("folder-input").setInputFiles(empty);
    await page.waitForFunction(() => document.body.dataset.input === "failed");
    expect(await page.getByTestId("error").textContent()).toBe(
      "kquant: no-weights: a model folder needs model.safetensors.index.json or model.safetensors; found neither (kquant reads .safetensors, .safetensors.index.json, .npy, .npz and model folders (config.json + model.safetensors or its index); .bin and .pt weights must be saved as .safetensors first)",
    );
    expect(await pick(page, [inputs.demo, inputs.multi])).toBe("failed");
    expect(await page.getByTestId("error").textContent()).toBe("kquant: 2 files picked (pick one file, a .safetensors.index.json with its shards, or one model folder)");
    await page.evaluate(() => delete document.body.dataset.picked);
  });

  it("Save to a folder writes the CLI's files into the folder picked (File System Access API; the origin's private folder here)", async () => {
    const { context } = shared;
    const page = await context.newPage();
    // Headless Chromium has no picker to click through: the folder "picked" is the origin's private file system.
    await page.addInitScript(() => {
      (window as unknown as { showDirectoryPicker: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker = () => navigator.storage.getDirectory();
    });
    await page.goto(url);
    const c: Case = { mode: "int4", blockSize: 16, backend: "torch", layout: "compressed-tensors" };
    const want = await cli(inputs.demo, c);
    expect(want).toHaveProperty("files");
    expect(await pick(page, inputs.demo)).toBe("ready");
    await choose(page, c);
    await page.getByTestId("quantize").click();
    await page.waitForFunction(() => document.body.dataset.state === "done");
    await page.getByTestId("save-folder").click();
    await page.waitForFunction(() => document.querySelector("#progress-text")?.textContent?.startsWith("Saved "));
    const saved = await page.evaluate(async () => {
      const root = await navigator.storage.getDirectory();
      const out: Record<string, string> = {};
      for await (const [name, handle] of (root as unknown as { entries(): AsyncIterable<[string, FileSystemFileHandle]> }).entries()) {
        const bytes = await (await handle.getFile()).arrayBuffer();
        out[name] = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
      }
      return out;
    });
    expect({ files: saved }).toEqual(want);
    await page.close();
  });

  it("a dropped model folder: its inspect table, and its run streamed into the folder picked, the CLI's files", async () => {
    const model = join(work, "tiny-model");
    mkdirSync(model);
    copyFileSync(inputs.demo, join(model, "model.safetensors"));
    writeFileSync(join(model, "config.json"), `${JSON.stringify({ architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 64 }, null, 2)}\n`);
    const FOLDER_RUN: Case = { mode: "int4", blockSize: 16, backend: "tensorflow", layout: "compressed-tensors" };
    const { page, context, errors } = await pageWithPickers(url);
    await dropFolder(page, model, ["config.json", "model.safetensors"]);
    expect(await page.evaluate(() => document.body.dataset.input)).toBe("ready");
    expect(await page.locator("#input-name").textContent()).toBe("Input: tiny-model");
    const names = await page.locator("#tensors tbody tr td.name").allTextContents();
    expect(names.length).toBeGreaterThan(3);
    await choose(page, FOLDER_RUN);
    await page.waitForFunction(() => document.querySelector("[data-testid=summary]")?.textContent?.includes("tiny-model-int4-g16-compressed-tensors"));
    await page.getByTestId("save-into").click();
    await page.waitForFunction(() => document.querySelector("[data-testid=destination]")?.textContent?.startsWith("Writing the outputs into the folder"));
    expect(await runToEnd(page)).toBe("done");
    const cliDir = join(work, `cli-${n++}`);
    mkdirSync(cliDir);
    expect((await runCli("quantize", model, ...flagsOf(FOLDER_RUN), "-q", "-o", join(cliDir, "tiny-model-int4-g16-compressed-tensors"))).code).toBe(0);
    const want = hashesUnder(cliDir);
    expect(Object.keys(want).length).toBeGreaterThanOrEqual(3);
    expect(await privateFiles(page)).toEqual(want);
    // Nothing is offered as a Blob download: every file is listed as saved.
    expect(await page.getByTestId("output-file").count()).toBe(0);
    expect(await page.getByTestId("saved-file").count()).toBe(Object.keys(want).length);
    expect(await page.getByTestId("download").isHidden()).toBe(true);
    // The Check step reads the output back from the folder.
    await page.waitForSelector("[data-testid=report] iframe", { timeout: WAIT_MS });
    // A second run into the same folder would overwrite the CLI's names there: refused, naming the file, and nothing changes.
    await page.getByTestId("save-into").click();
    await page.waitForFunction(() => document.querySelector("[data-testid=destination]")?.textContent?.startsWith("Writing"));
    expect(await runToEnd(page)).toMatch(/^failed: kquant: tiny-model-int4-g16-compressed-tensors\/[^:]+: output already exists in the folder picked \(pick another folder, or remove it first\)$/);
    expect(await privateFiles(page)).toEqual(want);
    expect(errors).toEqual([]);
    await context.close();
  });

  it("cross-origin isolated, the page runs the CLI's worker pool: 2 Web Workers give the bytes of none, and the CLI's", async () => {
    const { page, requests } = shared;
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    const c: Case = { mode: "int4", blockSize: 16, backend: "torch", layout: "keras" };
    const want = await cli(inputs.multi, c);
    const pool = `${url}pool-worker.js`;
    await page.getByTestId("threads").fill("0");
    expect(await pageRun(inputs.multi, c)).toEqual(want);
    expect(requests).not.toContain(pool);
    await page.getByTestId("threads").fill("2");
    expect(await pageRun(inputs.multi, c)).toEqual(want);
    expect(requests).toContain(pool);
    await page.getByTestId("threads").fill("");
  });

  it("an option the CLI refuses shows the CLI's line and writes nothing", async () => {
    const c: Case = { mode: "int4", blockSize: 0, backend: "tensorflow", layout: "kquant" };
    const want = await cli(inputs.demo, c);
    expect(want).toHaveProperty("error");
    expect(await pageRun(inputs.demo, c)).toEqual(want);
    expect(await shared.page.getByTestId("download").getAttribute("href")).toBeNull();
  });

  it("a malformed file from fixtures/bad shows the CLI's message, an unknown type says what it reads", async () => {
    const { page } = shared;
    for (const name of ["st-invalid-json.safetensors", "st-overlapping.safetensors", "npy-bad-magic.npy"]) {
      const r = await runCli("inspect", join(CORPUS, name));
      expect(r.code).toBe(2);
      expect(await pick(page, join(CORPUS, name))).toBe("failed");
      expect(await page.getByTestId("error").textContent()).toBe(r.stderr.trim().replaceAll(`${CORPUS}/`, ""));
      expect(await page.getByTestId("quantize").isDisabled()).toBe(true);
    }
    const bin = join(work, "pytorch_model.bin");
    writeFileSync(bin, "not read");
    expect(await pick(page, bin)).toBe("failed");
    expect(await page.getByTestId("error").textContent()).toBe((await runCli("inspect", bin)).stderr.trim().replaceAll(`${work}/`, ""));
    await page.evaluate(() => delete document.body.dataset.picked);
  });

  it("a recipe is checked as it is typed, pointing at the line that does not parse", async () => {
    const { page } = shared;
    await page.getByTestId("recipe").fill('{ "rules": [\n  { "match": "*", "mode": "int8" },\n  { "match": }\n] }');
    await page.waitForFunction(() => document.querySelector("#recipe")?.getAttribute("aria-invalid") === "true");
    expect(await page.locator("#recipe-status").textContent()).toBe("kquant: recipe.json: recipe is not valid JSON (line 3, column 14: expected a value, found '}')");
    await page.getByTestId("recipe").fill('{ "rules": [ { "match": "*", "mode": "int8" } ] }');
    await page.waitForFunction(() => document.querySelector("#recipe")?.getAttribute("aria-invalid") === null);
    await page.getByTestId("recipe").fill("");
  });

  it("cancel stops a run at once and leaves nothing", async () => {
    const big = join(work, "big.safetensors");
    writeBigFile(big);
    const loaded = await loadPage(url);
    const { page } = loaded;
    expect(await pick(page, big)).toBe("ready");
    await choose(page, { mode: "int4", blockSize: 32, backend: "tensorflow", layout: "kquant" });
    // Both clicks in one task of the page: the run (32 MiB read and quantized) has surely begun and not ended.
    const states = await page.evaluate(async () => {
      const button = (id: string) => document.querySelector(`[data-testid=${id}]`) as HTMLButtonElement;
      button("quantize").click();
      const during = document.body.dataset.state;
      await new Promise((r) => setTimeout(r, 50));
      const cancelEnabled = !button("cancel").disabled;
      button("cancel").click();
      return { during, cancelEnabled, after: document.body.dataset.state };
    });
    expect(states).toEqual({ during: "running", cancelEnabled: true, after: "cancelled" });
    // Nothing arrives from the stopped run later.
    await page.waitForTimeout(1500);
    expect(await page.evaluate(() => document.body.dataset.state)).toBe("cancelled");
    expect(await page.locator("#outputs").isHidden()).toBe(true);
    expect(await page.getByTestId("download").getAttribute("href")).toBeNull();
    expect(await page.getByTestId("progress").evaluate((p) => (p as HTMLProgressElement).value)).toBe(0);
    // The page is usable again, with the same input.
    await page.waitForFunction(() => !(document.querySelector("[data-testid=quantize]") as HTMLButtonElement).disabled);
    await loaded.context.close();
  });
});
