/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The page's outputs written as they are made to a file or a folder picked before the run (File
 * System Access API; headless Chromium opens no dialog, so the pickers answer with the origin's
 * private file system, OPFS), in Debian's headless Chromium, from the sources: "Save as…" gives
 * the CLI's bytes; a run cancelled or failing (a full disk: QuotaExceededError; memory:
 * RangeError) leaves nothing there, says so in one line and leaves the page usable. (npm test's
 * test/slow/page.slow.test.ts drops a model folder and streams its run into the folder picked.)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO, runCli } from "../support/cli.js";
import { choose, closeBrowser, dropFolder, flagsOf, hashesUnder, pageWithPickers, pick, privateFiles, runToEnd, serveFreshPage, WAIT_MS, writeBigFile, type Case } from "../web/page-driver.js";


let work: string;
let server: Server;
let url: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "kquant-web-io-"));
  ({ server, url } = await serveFreshPage(join(work, "site")));
});

afterAll(async () => {
  await closeBrowser();
  await new Promise((r) => server?.close(r));
  rmSync(work, { recursive: true, force: true });
});

let n = 0;
/** The CLI's files for the demo with `c` (its output named as the page names it), by path, with their sha256. */
async function cli(c: Case, output: string): Promise<Record<string, string>> {
  const dir = join(work, `cli-${n++}`);
  mkdirSync(dir);
  const r = await runCli("quantize", DEMO, ...flagsOf(c), "-q", "-o", join(dir, output));
  expect(r.code, r.stderr).toBe(0);
  return hashesUnder(dir);
}

const FILE_RUN: Case = { mode: "int8", backend: "torch", layout: "kquant" };

describe("the page's outputs streamed to the file or folder picked", () => {
  it("Save as…: the main output is written to the file picked, the manifest offered as a download", async () => {
    const { page, context, errors } = await pageWithPickers(url);
    expect(await pick(page, DEMO)).toBe("ready");
    await choose(page, FILE_RUN);
    await page.waitForFunction(() => document.querySelector("[data-testid=summary]")?.textContent?.includes("tiny-llama.int8.safetensors"));
    await page.getByTestId("save-as").click();
    await page.waitForFunction(() => document.querySelector("[data-testid=destination]")?.textContent?.startsWith("Writing the output to picked-tiny-llama.int8.safetensors"));
    expect(await runToEnd(page)).toBe("done");
    const want = await cli(FILE_RUN, "tiny-llama.int8.safetensors");
    expect(await privateFiles(page)).toEqual({ "picked-tiny-llama.int8.safetensors": want["tiny-llama.int8.safetensors"] });
    expect(await page.getByTestId("download").isHidden()).toBe(true);
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("manifest-download").click()]);
    expect(download.suggestedFilename()).toBe("tiny-llama.int8.safetensors.json");
    // The destination is for one run: the next one is offered as downloads again.
    expect(await page.getByTestId("destination").textContent()).toMatch(/^The outputs are offered as downloads after the run, up to 4\.00 GiB a file/);
    expect(errors).toEqual([]);
    await context.close();
  });

  it("cancel while writing into the folder picked removes what the run created there", async () => {
    const big = join(work, "big");
    mkdirSync(big);
    writeBigFile(join(big, "model.safetensors"));
    writeFileSync(join(big, "config.json"), "{}\n");
    const { page, context, errors } = await pageWithPickers(url);
    await dropFolder(page, big, ["config.json", "model.safetensors"]);
    expect(await page.evaluate(() => document.body.dataset.input)).toBe("ready");
    await choose(page, { mode: "int4", blockSize: 32, backend: "tensorflow", layout: "kquant" });
    await page.getByTestId("save-into").click();
    await page.waitForFunction(() => document.querySelector("[data-testid=destination]")?.textContent?.startsWith("Writing"));
    // Cancelled as soon as the run has created something in the folder (its output folder), while it runs.
    const during = await page.evaluate(async () => {
      const root = (await navigator.storage.getDirectory()) as FileSystemDirectoryHandle & { keys(): AsyncIterable<string> };
      (document.querySelector("[data-testid=quantize]") as HTMLButtonElement).click();
      for (;;) {
        const names: string[] = [];
        for await (const k of root.keys()) names.push(k);
        if (names.length > 0) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      const state = document.body.dataset.state;
      (document.querySelector("[data-testid=cancel]") as HTMLButtonElement).click();
      return state;
    });
    expect(during).toBe("running");
    await page.waitForFunction(() => document.querySelector("#progress-text")?.textContent === "Cancelled: nothing was written.", undefined, { timeout: WAIT_MS });
    expect(await page.evaluate(() => document.body.dataset.state)).toBe("cancelled");
    expect(await privateFiles(page)).toEqual({});
    expect(await page.evaluate(async () => {
      const names: string[] = [];
      for await (const k of ((await navigator.storage.getDirectory()) as FileSystemDirectoryHandle & { keys(): AsyncIterable<string> }).keys()) names.push(k);
      return names;
    })).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });

  it("a 32 MiB file: the pool (the CLI's default, 1 and 3 workers) streamed into the folder picked gives the bytes of none, and the CLI's", async () => {
    const big = join(work, "pool");
    mkdirSync(big);
    writeBigFile(join(big, "big.safetensors"));
    const c: Case = { mode: "int4", blockSize: 32, backend: "tensorflow", layout: "kquant" };
    const dir = join(work, `cli-${n++}`);
    mkdirSync(dir);
    expect((await runCli("quantize", join(big, "big.safetensors"), ...flagsOf(c), "-q", "-o", join(dir, "big.int4-g32.safetensors"))).code).toBe(0);
    const want = hashesUnder(dir);
    const { page, context, errors, requests } = await pageWithPickers(url);
    expect(await pick(page, join(big, "big.safetensors"))).toBe("ready");
    await choose(page, c);
    await page.waitForFunction(() => document.querySelector("[data-testid=summary]")?.textContent?.includes("big.int4-g32.safetensors"));
    for (const threads of ["0", "", "1", "3"]) {
      await page.getByTestId("threads").fill(threads);
      await page.getByTestId("save-into").click();
      await page.waitForFunction(() => document.querySelector("[data-testid=destination]")?.textContent?.startsWith("Writing"));
      expect(await runToEnd(page), `threads ${threads}`).toBe("done");
      expect(await privateFiles(page), `threads ${threads}`).toEqual(want);
      expect(requests.includes(`${url}pool-worker.js`), `threads ${threads}`).toBe(threads !== "0");
      await page.evaluate(async () => {
        const root = await navigator.storage.getDirectory();
        for (const name of ["big.int4-g32.safetensors", "big.int4-g32.safetensors.json"]) await root.removeEntry(name);
      });
    }
    expect(errors).toEqual([]);
    await context.close();
  });

  it("served without cross-origin isolation (a static host without COOP/COEP), the page runs on its one worker: the Workers control is off, the bytes the same", async () => {
    const { page, context, errors, requests } = await pageWithPickers(url, async (ctx) => {
      await ctx.route("**/*", async (route) => {
        const response = await route.fetch();
        const headers = { ...response.headers() };
        delete headers["cross-origin-embedder-policy"];
        await route.fulfill({ response, headers });
      });
    });
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
    expect(await page.getByTestId("threads").isDisabled()).toBe(true);
    expect(await page.locator("#threads-note").textContent()).toMatch(/^One worker: several need a cross-origin isolated page/);
    const big = join(work, "unisolated");
    mkdirSync(big);
    writeBigFile(join(big, "big.safetensors"));
    expect(await pick(page, join(big, "big.safetensors"))).toBe("ready");
    await choose(page, FILE_RUN);
    await page.getByTestId("save-into").click();
    await page.waitForFunction(() => document.querySelector("[data-testid=destination]")?.textContent?.startsWith("Writing"));
    expect(await runToEnd(page)).toBe("done");
    const dir = join(work, `cli-${n++}`);
    mkdirSync(dir);
    expect((await runCli("quantize", join(big, "big.safetensors"), ...flagsOf(FILE_RUN), "-q", "-o", join(dir, "big.int8.safetensors"))).code).toBe(0);
    expect(await privateFiles(page)).toEqual(hashesUnder(dir));
    expect(requests).not.toContain(`${url}pool-worker.js`);
    expect(errors).toEqual([]);
    await context.close();
  });

  /** A run into the folder picked that the worker's `sabotage` makes fail: one line, nothing left, the page usable. */
  async function failingRun(sabotage: string, line: RegExp): Promise<void> {
    const { page, context } = await pageWithPickers(url);
    expect(await pick(page, DEMO)).toBe("ready");
    await choose(page, FILE_RUN);
    await page.waitForFunction(() => document.querySelector("[data-testid=summary]")?.textContent?.includes("tiny-llama.int8.safetensors"));
    const [worker] = page.workers();
    await worker!.evaluate(sabotage);
    await page.getByTestId("save-into").click();
    await page.waitForFunction(() => document.querySelector("[data-testid=destination]")?.textContent?.startsWith("Writing"));
    expect(await runToEnd(page)).toMatch(/^failed: /);
    const error = (await page.getByTestId("error").textContent())!;
    expect(error).toMatch(line);
    expect(error).not.toContain("\n");
    expect(await page.locator("#progress-text").textContent()).toBe("Stopped: nothing was written.");
    expect(await privateFiles(page)).toEqual({});
    // Usable again: the same run, without the fault, is offered as downloads.
    await worker!.evaluate("globalThis.__undo()");
    expect(await page.getByTestId("quantize").isDisabled()).toBe(false);
    expect(await runToEnd(page)).toBe("done");
    expect(await page.getByTestId("output-file").count()).toBe(2);
    expect(await page.getByTestId("error").textContent()).toBe("");
    await context.close();
  }

  it("a full disk (the stream's write throws QuotaExceededError) says so in one line and leaves nothing", async () => {
    await failingRun(
      `(() => {
        const proto = FileSystemWritableFileStream.prototype;
        const write = proto.write;
        let calls = 0;
        proto.write = function (chunk) {
          if (++calls > 2) return Promise.reject(new DOMException("The operation failed because it would cause the application to exceed its storage quota.", "QuotaExceededError"));
          return write.call(this, chunk);
        };
        globalThis.__undo = () => (proto.write = write);
      })()`,
      /^kquant: .*out of memory or storage in the browser \(The operation failed because it would cause the application to exceed its storage quota\.\)$/,
    );
  });

  it("memory running out (an allocation throws RangeError) says so in one line and leaves nothing", async () => {
    await failingRun(
      `(() => {
        const proto = Blob.prototype;
        const arrayBuffer = proto.arrayBuffer;
        proto.arrayBuffer = function () {
          return this.size > 4096 ? Promise.reject(new RangeError("Array buffer allocation failed")) : arrayBuffer.call(this);
        };
        globalThis.__undo = () => (proto.arrayBuffer = arrayBuffer);
      })()`,
      /^kquant: .*out of memory or storage in the browser \(Array buffer allocation failed\)$/,
    );
  });
});
