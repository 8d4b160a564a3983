#!/usr/bin/env node
/**
 * The page's memory and time on a large file: `node --experimental-websocket bench/web-memory.mjs
 * [--gib 2] [--tensors 16] [--mode int8|int4-g128] [--save blob|folder] [--threads N]`. Writes a
 * float32 file of equal tensors, times the built CLI's `kquant quantize` on it, then quantizes it
 * in the page served by the built `kquant web` in Debian's headless Chromium, sampling the
 * JavaScript heap (used size) and the ArrayBuffer and WebAssembly backing stores of the page, its
 * worker and the pool's workers through the DevTools protocol (Runtime.getHeapUsage, every 50 ms),
 * and the anonymous resident memory of all Chromium's processes (RssAnon, every 200 ms: Blob
 * storage is the browser process's), and checks the output's sha256 equals the CLI's. `--save blob` (default): the output is offered
 * as a download (Blobs); `--save folder`: it is written as it is made into the folder picked before
 * the run (the origin's private file system stands for it: headless Chromium opens no dialog).
 * `--threads`: the page's Workers control (default: empty, the CLI's default). Chromium runs with
 * a profile on disk (a persistent context), as a user's does. Figures go to
 * docs/speed.md by hand. Needs `npm run build` first.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, mkdtempSync, readFileSync, openSync, rmSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const KQUANT = join(ROOT, "bin", "kquant.js");
const MiB = 1024 * 1024;
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const gib = Number(arg("gib", "2"));
const count = Number(arg("tensors", "16"));
const mode = arg("mode", "int8");
const flags = mode === "int8" ? ["--int8"] : ["--int4", "--block-size", "128"];
const save = arg("save", "blob");
const threads = arg("threads", "");

const dir = mkdtempSync(join(tmpdir(), "kquant-web-memory-"));
const input = join(dir, "big.safetensors");
const tensorBytes = (gib * 1024 * MiB) / count;
const cols = 4096;
const rows = tensorBytes / 4 / cols;

function writeInput() {
  const header = {};
  for (let i = 0; i < count; i++) header[`layers.${i}.weight`] = { dtype: "F32", shape: [rows, cols], data_offsets: [i * tensorBytes, (i + 1) * tensorBytes] };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(input, "w");
  writeSync(fd, len);
  writeSync(fd, json);
  const chunk = new Float32Array(16 * MiB / 4);
  let seed = 1;
  for (let i = 0; i < chunk.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    chunk[i] = seed / 2 ** 32 - 0.5;
  }
  for (let written = 0; written < count * tensorBytes; written += chunk.byteLength) writeSync(fd, new Uint8Array(chunk.buffer));
  closeSync(fd);
}

const sha256File = (path) =>
  new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path).on("data", (d) => h.update(d)).on("end", () => resolve(h.digest("hex"))).on("error", reject);
  });

/** A minimal DevTools protocol client over the browser's WebSocket, with flat sessions. */
async function devtools(port) {
  const { webSocketDebuggerUrl } = await (await fetch(`http://127.0.0.1:${port}/json/version`)).json();
  const ws = new WebSocket(webSocketDebuggerUrl);
  await new Promise((r) => ws.addEventListener("open", r, { once: true }));
  let id = 0;
  const pending = new Map();
  const listeners = [];
  ws.addEventListener("message", (e) => {
    const msg = JSON.parse(e.data);
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      msg.error ? p.reject(new Error(msg.error.message)) : p.resolve(msg.result);
    } else for (const l of listeners) l(msg);
  });
  return {
    send: (method, params = {}, sessionId) =>
      new Promise((resolve, reject) => {
        pending.set(++id, { resolve, reject });
        ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
      }),
    on: (l) => listeners.push(l),
    close: () => ws.close(),
  };
}

writeInput();
console.log(`input: ${count} × ${tensorBytes / MiB} MiB float32 = ${gib} GiB; mode ${mode}; save ${save}; workers ${threads === "" ? "default" : threads}`);

// The CLI, as users run it (default threads), its output on the same disk.
const cliOut = join(dir, "cli.safetensors");
const t0 = performance.now();
const cli = spawnSync(process.execPath, [KQUANT, "quantize", input, ...flags, "-o", cliOut, "-q"], { stdio: "inherit" });
const cliSeconds = (performance.now() - t0) / 1000;
if (cli.status !== 0) throw new Error("kquant quantize failed");
const cliSingle = join(dir, "cli-t0.safetensors");
const t1 = performance.now();
spawnSync(process.execPath, [KQUANT, "quantize", input, ...flags, "-o", cliSingle, "-q", "--threads", "0"], { stdio: "inherit" });
const cliSingleSeconds = (performance.now() - t1) / 1000;
console.log(`CLI: ${cliSeconds.toFixed(2)} s (default threads), ${cliSingleSeconds.toFixed(2)} s (--threads 0, one thread as in the page)`);

const server = spawn(process.execPath, [KQUANT, "web"], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise((resolve) => server.stdout.on("data", (d) => { const m = /http:\/\/\S+\//.exec(String(d)); if (m) resolve(m[0]); }));
const port = 9300 + Math.floor(Math.random() * 500);
// A profile on disk, as a user's browser has: in an off-the-record context (Playwright's default)
// Chromium keeps the origin's private file system, and every Blob, in memory.
const browser = await chromium.launchPersistentContext(join(dir, "profile"), { executablePath: "/usr/bin/chromium", args: [`--remote-debugging-port=${port}`], acceptDownloads: true });
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  if (save === "folder") {
    await page.addInitScript(() => {
      window.showDirectoryPicker = () => navigator.storage.getDirectory();
    });
  }
  await page.goto(url);
  const cdp = await devtools(port);
  const { targetInfos } = await cdp.send("Target.getTargets");
  const pageTarget = targetInfos.find((t) => t.type === "page" && t.url === url);
  const { sessionId: pageSession } = await cdp.send("Target.attachToTarget", { targetId: pageTarget.targetId, flatten: true });
  const sessions = new Map([[pageSession, "page"]]);
  cdp.on((msg) => {
    if (msg.method === "Target.attachedToTarget" && msg.params.targetInfo.type === "worker") {
      // The page's worker, then the pool's workers it starts (attached to it in turn).
      const name = [...sessions.values()].includes("worker") ? `pool${sessions.size - 1}` : "worker";
      sessions.set(msg.params.sessionId, name);
      cdp.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: false, flatten: true }, msg.params.sessionId).catch(() => {});
    }
  });
  await cdp.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: false, flatten: true }, pageSession);
  await new Promise((r) => setTimeout(r, 300));

  let peak = { total: 0 };
  let sampling = true;
  // Chromium's processes' anonymous resident memory (RssAnon: heaps, buffers, WebAssembly memory,
  // Blob storage; not the binaries and files they map): the tab's renderer process (the page and
  // all its workers), the browser process (which keeps the Blobs), and all of them.
  const browserPid = Number(
    spawnSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
      .stdout.split("\n")
      .find((l) => l.includes(`--remote-debugging-port=${port}`) && !l.includes("--type="))
      ?.trim()
      .split(/\s+/)[0],
  );
  const rssPeak = { renderer: 0, browser: 0, all: 0 };
  const anon = (pid) => {
    try {
      return Number(/^RssAnon:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
    } catch {
      return 0;
    }
  };
  const sampleRss = () => {
    const rows = spawnSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" }).stdout.trim().split("\n").map((l) => {
      const [pid, ppid, ...args] = l.trim().split(/\s+/);
      return { pid: Number(pid), ppid: Number(ppid), renderer: args.includes("--type=renderer") };
    });
    const inTree = new Set([browserPid]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const r of rows) if (!inTree.has(r.pid) && inTree.has(r.ppid)) (inTree.add(r.pid), (grew = true));
    }
    const mine = rows.filter((r) => inTree.has(r.pid)).map((r) => ({ ...r, anon: anon(r.pid) }));
    rssPeak.renderer = Math.max(rssPeak.renderer, ...mine.filter((r) => r.renderer).map((r) => r.anon));
    rssPeak.browser = Math.max(rssPeak.browser, anon(browserPid));
    rssPeak.all = Math.max(rssPeak.all, mine.reduce((n, r) => n + r.anon, 0));
  };
  const rssSampler = (async () => {
    while (sampling) {
      sampleRss();
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const sample = async () => {
    while (sampling) {
      let total = 0;
      const parts = {};
      for (const [s, what] of sessions) {
        try {
          const u = await cdp.send("Runtime.getHeapUsage", {}, s);
          parts[what] = { heap: u.usedSize, buffers: u.backingStorageSize ?? 0 };
          total += u.usedSize + (u.backingStorageSize ?? 0);
        } catch {
          // a worker that ended
        }
      }
      if (total > peak.total) peak = { total, ...parts };
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const sampler = sample();

  const t2 = performance.now();
  await page.getByTestId("file-input").setInputFiles(input);
  await page.waitForFunction(() => document.body.dataset.input === "ready", undefined, { timeout: 60_000 });
  const openSeconds = (performance.now() - t2) / 1000;
  if (mode === "int8") await page.getByTestId("mode").selectOption("int8");
  else {
    await page.getByTestId("mode").selectOption("int4");
    await page.getByTestId("block-size").fill("128");
  }
  await page.getByTestId("threads").fill(threads);
  if (save === "folder") await page.getByTestId("save-into").click();
  await page.waitForTimeout(500);
  const t3 = performance.now();
  await page.getByTestId("quantize").click();
  await page.waitForFunction(() => document.body.dataset.state === "done" || document.body.dataset.state === "failed", undefined, { timeout: 600_000, polling: 50 });
  const pageSeconds = (performance.now() - t3) / 1000;
  const quantizePeak = peak;
  const quantizeRss = { ...rssPeak };
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state !== "done") throw new Error(`page run: ${await page.getByTestId("error").textContent()}`);
  // The Check step (verify --against) runs next, in the same worker.
  await page.waitForSelector("[data-testid=report] iframe", { timeout: 600_000 });
  const verifyPeak = peak;
  sampling = false;
  await sampler;
  await rssSampler;
  if (save === "folder") {
    // The file as the folder has it, downloaded through a link to it (never read whole into the page).
    await page.evaluate(async () => {
      const file = await (await (await navigator.storage.getDirectory()).getFileHandle("big.int8.safetensors").catch(() => null) ?? (await (await navigator.storage.getDirectory()).getFileHandle("big.int4-g128.safetensors"))).getFile();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(file);
      a.download = "page.safetensors";
      a.id = "bench-download";
      a.textContent = "x";
      document.body.append(a);
    });
  }
  const link = save === "folder" ? page.locator("#bench-download") : page.getByTestId("download");
  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  const pageOut = join(dir, "page.safetensors");
  await download.saveAs(pageOut);
  const same = (await sha256File(pageOut)) === (await sha256File(cliSingle)) && (await sha256File(cliOut)) === (await sha256File(cliSingle));
  const bound = 2 * tensorBytes + 200 * MiB;
  const f = (b) => `${(b / MiB).toFixed(0)} MiB`;
  console.log(`page: opened in ${openSeconds.toFixed(2)} s; quantized in ${pageSeconds.toFixed(2)} s (${(pageSeconds / cliSeconds).toFixed(2)} × the CLI's default, ${(pageSeconds / cliSingleSeconds).toFixed(2)} × its one thread)`);
  const parts = Object.entries(quantizePeak).filter(([k]) => k !== "total").map(([k, v]) => `${k} ${f(v.heap)} + ${f(v.buffers)}`);
  console.log(`peak heap + buffers while quantizing: ${f(quantizePeak.total)} (${parts.join(", ")}); bound 2 × ${f(tensorBytes)} + 200 MiB = ${f(bound)}`);
  console.log(`peak anonymous resident memory while quantizing: the tab's renderer process ${f(quantizeRss.renderer)}, the browser process ${f(quantizeRss.browser)}, all of Chromium's processes ${f(quantizeRss.all)}`);
  console.log(`peak through the Check step (verify --against): ${f(verifyPeak.total)}`);
  console.log(`output sha256 equals the CLI's: ${same}`);
  cdp.close();
} finally {
  await browser.close();
  server.kill("SIGINT");
  rmSync(dir, { recursive: true, force: true });
}
