/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Drives the page (web/, served as `kquant web` serves it) in Debian's headless Chromium through
 * its data-testid hooks, and runs the same quantize through the CLI, for tests that compare the
 * bytes (test/slow/page.slow.test.ts, and the full sweep test/slow/dist-web.slow.test.ts).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { basename, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Download, type Locator, type Page } from "playwright-core";
import { pageFiles, servePage } from "../../src/serve/page-server.js";
import { DEMO } from "../support/cli.js";

export const CHROMIUM = "/usr/bin/chromium";

/**
 * Builds the page from the sources (scripts/bundle-web.mjs) into `site` and serves it as `kquant
 * web` does, on a free port: the server and the page's address.
 */
export async function serveFreshPage(site: string): Promise<{ server: Server; url: string }> {
  execFileSync(process.execPath, [fileURLToPath(new URL("../../scripts/bundle-web.mjs", import.meta.url)), site]);
  const server = await servePage(pageFiles(site), 0);
  const address = server.address();
  return { server, url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/` };
}

/** One quantize choice, as the page's controls and the CLI's flags both take it. */
export interface Case {
  mode: "int8" | "int4" | "float8";
  blockSize?: number;
  float8?: "e4m3" | "e5m2";
  backend: "tensorflow" | "torch" | "jax" | "numpy";
  layout: "kquant" | "keras" | "compressed-tensors" | "mlx";
}

/** The CLI's flags for `c` (what the page's controls mean). */
export function flagsOf(c: Case): string[] {
  const mode = c.mode === "float8" ? ["--float8", c.float8 ?? "e4m3"] : [`--${c.mode}`];
  return [
    ...mode,
    ...(c.blockSize !== undefined ? ["--block-size", String(c.blockSize)] : []),
    "--keras-backend",
    c.backend,
    ...(c.layout !== "kquant" ? ["--layout", c.layout] : []),
  ];
}

export const label = (c: Case) => flagsOf(c).join(" ");

/** Every mode the page offers (int8, and in groups for MLX; int4 per channel and grouped; both float8 formats). */
export const MODES: Pick<Case, "mode" | "blockSize" | "float8">[] = [
  { mode: "int8" },
  { mode: "int8", blockSize: 32 },
  { mode: "int4" },
  { mode: "int4", blockSize: 16 },
  { mode: "float8", float8: "e4m3" },
  { mode: "float8", float8: "e5m2" },
];
export const BACKENDS: Case["backend"][] = ["tensorflow", "torch", "jax", "numpy"];
export const LAYOUTS: Case["layout"][] = ["kquant", "keras", "compressed-tensors", "mlx"];

type Spec = { name: string; dtype: string; shape: number[] };

/** The multi-tensor file's tensors: F32, F16 and BF16 matrices, a 3-D tensor, a bias, an int tensor. */
const MULTI: Spec[] = [
    { name: "model.layers.0.mlp.down_proj.weight", dtype: "F32", shape: [48, 64] },
    { name: "model.layers.0.mlp.up_proj.weight", dtype: "F16", shape: [64, 48] },
    { name: "model.layers.0.self_attn.q_proj.weight", dtype: "BF16", shape: [32, 32] },
    { name: "model.layers.0.self_attn.q_proj.bias", dtype: "F32", shape: [32] },
    { name: "model.conv.weight", dtype: "F32", shape: [4, 8, 16] },
    { name: "model.embed_tokens.weight", dtype: "F32", shape: [80, 32] },
    { name: "model.position_ids", dtype: "I64", shape: [8] },
];

/** A deterministic multi-tensor safetensors file (MULTI). */
export function writeMultiTensorFile(path: string): void {
  writeSafetensors(path, MULTI);
}

/**
 * MULTI as a sharded checkpoint in `dir`: model-0000{1,2}-of-00002.safetensors and
 * model.safetensors.index.json; returns the three paths, the index first.
 */
export function writeShardedFiles(dir: string): string[] {
  const half = Math.ceil(MULTI.length / 2);
  const shards = [MULTI.slice(0, half), MULTI.slice(half)];
  const names = shards.map((_, i) => `model-0000${i + 1}-of-00002.safetensors`);
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((specs, i) => {
    total += writeSafetensors(join(dir, names[i]!), specs, 777 + i);
    for (const s of specs) weightMap[s.name] = names[i]!;
  });
  const index = join(dir, "model.safetensors.index.json");
  writeFileSync(index, `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`);
  return [index, ...names.map((n) => join(dir, n))];
}

/** Writes `specs` with deterministic values; returns the data bytes. */
function writeSafetensors(path: string, specs: Spec[], firstSeed = 12345): number {
  let seed = firstSeed;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32 - 0.5;
  };
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  const blobs: Buffer[] = [];
  let offset = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    let bytes: Buffer;
    if (s.dtype === "I64") {
      bytes = Buffer.alloc(8 * n);
      for (let i = 0; i < n; i++) bytes.writeBigInt64LE(BigInt(i), 8 * i);
    } else {
      const f = new Float32Array(n);
      for (let i = 0; i < n; i++) f[i] = rand() * (1 + (i % 7));
      if (s.dtype === "F32") bytes = Buffer.from(f.buffer);
      else {
        bytes = Buffer.alloc(2 * n);
        const u = new Uint32Array(f.buffer);
        for (let i = 0; i < n; i++) bytes.writeUInt16LE(s.dtype === "BF16" ? u[i]! >>> 16 : toHalf(f[i]!), 2 * i);
      }
    }
    header[s.name] = { dtype: s.dtype, shape: s.shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
    blobs.push(bytes);
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, ...blobs]));
  return offset;
}

/** float32 → float16 bits, truncating (any half value will do: the test data only needs to be float16). */
function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7bff;
  return sign | (exp << 10) | ((x >>> 13) & 0x3ff);
}

/** The test inputs: the demo and a generated multi-tensor file, each in a folder of its own. */
export function makeInputs(dir: string): { demo: string; multi: string } {
  mkdirSync(join(dir, "demo"));
  mkdirSync(join(dir, "multi"));
  const demo = join(dir, "demo", basename(DEMO));
  copyFileSync(DEMO, demo);
  const multi = join(dir, "multi", "multi.safetensors");
  writeMultiTensorFile(multi);
  return { demo, multi };
}

export const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Files under `dir` (relative path → sha256), leaving out `except`. */
export function hashesUnder(dir: string, except: ReadonlySet<string> = new Set()): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (!except.has(relative(dir, p))) out[relative(dir, p)] = sha256(readFileSync(p));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

export interface Loaded {
  context: BrowserContext;
  page: Page;
  /** Every request the page (and its worker) made. */
  requests: string[];
  /** Console errors and uncaught exceptions (a CSP violation is a console error too). */
  errors: string[];
}

let launched: Promise<Browser> | undefined;

/** The one browser of a test file, launched on first use; a missing Chromium fails the test (never skips it). */
export function browser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run \`bash test/report/ensure-chromium.sh\` (installs Debian's chromium package) before this test`);
  }
  launched ??= chromium.launch({ executablePath: CHROMIUM });
  return launched;
}

export async function closeBrowser(): Promise<void> {
  await (await launched)?.close();
  launched = undefined;
}

/** Opens the page at `url` in a fresh context that records every request and error (`before`: set the context up first). */
export async function loadPage(url: string, viewport = { width: 1100, height: 900 }, before?: (context: BrowserContext) => Promise<void>): Promise<Loaded> {
  const context = await (await browser()).newContext({ viewport, deviceScaleFactor: 1, acceptDownloads: true });
  await before?.(context);
  const loaded: Loaded = { context, page: await context.newPage(), requests: [], errors: [] };
  context.on("request", (r) => loaded.requests.push(r.url()));
  loaded.page.on("websocket", (ws) => loaded.requests.push(ws.url()));
  loaded.page.on("console", (m) => {
    if (m.type() === "error") loaded.errors.push(m.text());
  });
  loaded.page.on("pageerror", (e) => loaded.errors.push(String(e)));
  await loaded.page.goto(url, { waitUntil: "load" });
  return loaded;
}

const hook = (page: Page, id: string) => page.getByTestId(id);

/** How long a step may take on a loaded 2-core CI machine (Playwright's default is 30 s). */
export const WAIT_MS = 90_000;

/** Picks `files` in the page's file input and waits until it has read them (or refused them). */
export async function pick(page: Page, files: string | string[]): Promise<"ready" | "failed"> {
  await hook(page, "file-input").setInputFiles(files);
  await page.waitForFunction(() => document.body.dataset.input === "ready" || document.body.dataset.input === "failed", undefined, { timeout: WAIT_MS });
  return (await page.evaluate(() => document.body.dataset.input)) as "ready" | "failed";
}

/** Sets the page's controls to `c`. */
export async function choose(page: Page, c: Case): Promise<void> {
  await hook(page, "mode").selectOption(c.mode);
  await hook(page, "block-size").fill(c.blockSize === undefined ? "" : String(c.blockSize));
  if (c.mode === "float8") await hook(page, "float8-format").selectOption(c.float8 ?? "e4m3");
  await hook(page, "backend").selectOption(c.backend);
  await hook(page, "layout").selectOption(c.layout === "kquant" ? "" : c.layout);
}

export type RunResult = { files: Record<string, string> } | { error: string };

/**
 * The download a click on `link` starts. Headless Chromium now and then starts none for a click on
 * a blob link (seen after many downloads from one page; not found in the page, whose links stay
 * in place): the link is clicked again, at most three times, and each retry is logged.
 */
async function downloadOf(page: Page, link: Locator): Promise<Download> {
  for (let attempt = 1; ; attempt++) {
    try {
      const [download] = await Promise.all([page.waitForEvent("download", { timeout: attempt < 3 ? 20_000 : WAIT_MS }), link.click({ timeout: WAIT_MS })]);
      return download;
    } catch (err) {
      if (attempt >= 3) throw err;
      console.warn(`no download for ${await link.textContent()} (attempt ${attempt}); clicking again`);
    }
  }
}

/**
 * Clicks quantize, waits for the run to end, and saves every output through the browser's
 * download into `saveDir`: the files' names and sha256, or the error line the page shows.
 */
export async function runInPage(page: Page, saveDir: string): Promise<RunResult> {
  await hook(page, "quantize").click({ timeout: WAIT_MS });
  await page
    .waitForFunction(() => document.body.dataset.state === "done" || document.body.dataset.state === "failed", undefined, { timeout: WAIT_MS })
    .catch(async (err: unknown) => {
      throw new Error(`the run did not end: state ${await page.evaluate(() => document.body.dataset.state)}, error "${await hook(page, "error").textContent()}" (${String(err)})`);
    });
  if ((await page.evaluate(() => document.body.dataset.state)) === "failed") return { error: (await hook(page, "error").textContent()) ?? "" };
  const links = hook(page, "output-file");
  const files: Record<string, string> = {};
  for (let i = 0; i < (await links.count()); i++) {
    const download = await downloadOf(page, links.nth(i));
    const name = (await links.nth(i).textContent())!.replace(/ \([^)]*\)$/, "");
    const to = join(saveDir, name);
    await download.saveAs(to);
    files[name] = sha256(readFileSync(to));
  }
  return { files };
}

/** 4 × 8 MiB of float32: long enough in the page to be cancelled mid-run. */
export function writeBigFile(path: string): void {
  const count = 4;
  const bytesEach = 8 * 1024 * 1024;
  const header: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) header[`w${i}`] = { dtype: "F32", shape: [2048, bytesEach / 4 / 2048], data_offsets: [i * bytesEach, (i + 1) * bytesEach] };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const data = Buffer.alloc(count * bytesEach);
  const f = new Float32Array(data.buffer, data.byteOffset, data.length / 4);
  for (let i = 0; i < f.length; i++) f[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  writeFileSync(path, Buffer.concat([len, json, data]));
}

/**
 * A page (loadPage) whose pickers answer without a dialog: "Save as…" with `name` in the origin's private
 * folder, "Save into a folder…" with that folder.
 */
export async function pageWithPickers(url: string, before?: (context: BrowserContext) => Promise<void>): Promise<Loaded> {
  const loaded = await loadPage(url, undefined, before);
  await loaded.page.evaluate(() => {
    const w = window as unknown as Record<string, unknown>;
    w.showDirectoryPicker = () => navigator.storage.getDirectory();
    w.showSaveFilePicker = async (o: { suggestedName: string }) => (await navigator.storage.getDirectory()).getFileHandle(`picked-${o.suggestedName}`, { create: true });
  });
  // The buttons show once the page sees the pickers: at its next sync (picking an input).
  return loaded;
}

/** Every file in the origin's private folder: path → sha256. */
export function privateFiles(page: Page): Promise<Record<string, string>> {
  return page.evaluate(async () => {
    const out: Record<string, string> = {};
    type Dir = FileSystemDirectoryHandle & { entries(): AsyncIterable<[string, FileSystemHandle]> };
    const walk = async (dir: Dir, prefix: string) => {
      for await (const [name, h] of dir.entries()) {
        if (h.kind === "directory") {
          out[`${prefix}${name}/`] = "dir";
          await walk(h as Dir, `${prefix}${name}/`);
        } else {
          const bytes = await (await (h as FileSystemFileHandle).getFile()).arrayBuffer();
          out[prefix + name] = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
        }
      }
    };
    await walk((await navigator.storage.getDirectory()) as Dir, "");
    for (const k of Object.keys(out)) if (out[k] === "dir") delete out[k];
    return out;
  });
}

/** Clicks quantize and waits until the run is done or failed; the state ("failed: <the error line>" when it failed). */
export async function runToEnd(page: Page): Promise<string> {
  await page.getByTestId("quantize").click();
  await page.waitForFunction(() => document.body.dataset.state === "done" || document.body.dataset.state === "failed", undefined, { timeout: WAIT_MS });
  const state = (await page.evaluate(() => document.body.dataset.state))!;
  return state === "failed" ? `failed: ${await page.getByTestId("error").textContent()}` : state;
}

/**
 * Drops `folder` (its files, read through a file input of the page's own) on the drop zone as a
 * browser drops a folder: a drop event whose DataTransfer item is a directory entry.
 */
export async function dropFolder(page: Page, folder: string, files: string[]): Promise<void> {
  await page.evaluate(() => {
    const input = document.createElement("input");
    input.type = "file";
    input.multiple = true;
    input.id = "test-files";
    input.hidden = true;
    document.body.append(input);
  });
  await page.locator("#test-files").setInputFiles(files.map((f) => join(folder, f)));
  await page.evaluate((name) => {
    const input = document.querySelector("#test-files") as HTMLInputElement;
    const picked = [...input.files!];
    input.remove();
    const fileEntry = (file: File) => ({ isFile: true, isDirectory: false, name: file.name, file: (ok: (f: File) => void) => ok(file) });
    // readEntries answers in batches until an empty one, as Chromium's does.
    const batches = [picked.slice(0, 1).map(fileEntry), picked.slice(1).map(fileEntry), []];
    const dir = { isFile: false, isDirectory: true, name, createReader: () => ({ readEntries: (ok: (e: unknown[]) => void) => ok(batches.shift() ?? []) }) };
    const drop = new Event("drop", { bubbles: true, cancelable: true });
    Object.defineProperty(drop, "dataTransfer", { value: { items: [{ kind: "file", webkitGetAsEntry: () => dir }] } });
    document.querySelector("#drop")!.dispatchEvent(drop);
  }, basename(folder));
  await page.waitForFunction(() => document.body.dataset.input === "ready" || document.body.dataset.input === "failed", undefined, { timeout: WAIT_MS });
}

/** A folder mode's choice (`--scheme NAME [--ignore E]...`, `--mlx MODE [--bits N] [--block-size N] [--dtype D]`), as the page's controls and the CLI's flags take it. */
export type FolderCase =
  | { mode: "scheme"; scheme: string; ignore?: string[] }
  | { mode: "mlx"; mlxMode: "affine" | "mxfp4" | "mxfp8" | "nvfp4"; bits?: number; blockSize?: number; dtype?: "float32" | "float16" | "bfloat16" };

/** The CLI's flags for `c`. */
export function folderFlagsOf(c: FolderCase): string[] {
  if (c.mode === "scheme") return ["--scheme", c.scheme, ...(c.ignore ?? []).flatMap((e) => ["--ignore", e])];
  return [
    "--mlx",
    c.mlxMode,
    ...(c.bits !== undefined ? ["--bits", String(c.bits)] : []),
    ...(c.blockSize !== undefined ? ["--block-size", String(c.blockSize)] : []),
    ...(c.dtype !== undefined ? ["--dtype", c.dtype] : []),
  ];
}

/** Sets the page's controls to the folder mode `c`. */
export async function chooseFolderMode(page: Page, c: FolderCase): Promise<void> {
  await hook(page, "mode").selectOption(c.mode);
  if (c.mode === "scheme") {
    await hook(page, "scheme").selectOption(c.scheme);
    await hook(page, "ignore").fill((c.ignore ?? []).join(" "));
    return;
  }
  await hook(page, "mlx-mode").selectOption(c.mlxMode);
  await hook(page, "bits").fill(c.bits === undefined ? "" : String(c.bits));
  await hook(page, "block-size").fill(c.blockSize === undefined ? "" : String(c.blockSize));
  await hook(page, "mlx-dtype").selectOption(c.dtype ?? "");
}

/** Picks the folder `dir` in the page's folder input and waits until it has read it (or refused it). */
export async function pickFolder(page: Page, dir: string): Promise<"ready" | "failed"> {
  await hook(page, "folder-input").setInputFiles(dir);
  await page.waitForFunction(() => document.body.dataset.input === "ready" || document.body.dataset.input === "failed", undefined, { timeout: WAIT_MS });
  return (await page.evaluate(() => document.body.dataset.input)) as "ready" | "failed";
}

/**
 * A copy of the model folder `src` (its files, one level) at `dir/<name of src>`, for a CLI run
 * whose outputs land beside it; returns the copy's path.
 */
export function copyFolder(src: string, dir: string): string {
  const copy = join(dir, basename(src));
  mkdirSync(copy);
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(copy, f));
  return copy;
}

/** The files a CLI run wrote in `dir` beside its input `input` (relative path → sha256). */
export function outputsBeside(dir: string, input: string): Record<string, string> {
  const files = hashesUnder(dir);
  for (const k of Object.keys(files)) if (k === basename(input) || k.startsWith(`${basename(input)}/`)) delete files[k];
  return files;
}
