/// <reference lib="dom" />
/**
 * The built CLI's `kquant web` (dist/, from `npm run build`) serves the page, and the page's
 * downloads equal the built CLI's `kquant quantize` files (or its error line), sha256 for sha256,
 * for every mode (int8 with and without --block-size, int4 per channel, grouped int4, float8 e4m3
 * and e5m2), every Keras backend and every
 * layout, on the demo and a generated multi-tensor file, and for a model folder picked through
 * the folder input in every layout; every --scheme preset and the --mlx modes on two generated
 * Llama-shaped folders (one F32, one of mixed F32 / F16 / BF16 tensors), picked through the folder
 * input; numpy's own .npz (np.savez and np.savez_compressed, made by test/web/make_npz.py in the
 * mlx Python environment); no request leaves the page's origin. (npm test's
 * test/slow/page.slow.test.ts runs a cross-section of these from the sources.)
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, userEnv } from "../dist/run.js";
import { REPO } from "../dist/demo-workflow.js";
import { SCHEME_NAMES } from "../../src/modes/llmc-schemes.js";
import { writeModelFolder } from "../layouts/model-folder.js";
import { BACKENDS, choose, chooseFolderMode, closeBrowser, copyFolder, flagsOf, folderFlagsOf, hashesUnder, label, LAYOUTS, loadPage, makeInputs, MODES, outputsBeside, pick, pickFolder, runInPage, type Case, type FolderCase, type Loaded } from "../web/page-driver.js";

const KQUANT = join(REPO, "bin", "kquant.js");
let work: string;
let server: ChildProcessWithoutNullStreams;
let url: string;
let inputs: { demo: string; multi: string };
let loaded: Loaded;

beforeAll(async () => {
  const built = await run("npm", ["run", "build"], { cwd: REPO, env: userEnv() });
  expect(built.code, built.stderr).toBe(0);
  work = mkdtempSync(join(tmpdir(), "kquant-dist-web-"));
  inputs = makeInputs(work);
  server = spawn(process.execPath, [KQUANT, "web"], { cwd: work, env: userEnv() });
  url = await new Promise<string>((resolve, reject) => {
    let out = "";
    server.stdout.setEncoding("utf8").on("data", (s: string) => {
      out += s;
      const m = /^kquant: serving the page at (http:\/\/127\.0\.0\.1:\d+\/) \(Ctrl-C stops it\)$/m.exec(out);
      if (m) resolve(m[1]!);
    });
    server.on("exit", (code) => reject(new Error(`kquant web exited with ${code}: ${out}`)));
  });
  loaded = await loadPage(url);
});

afterAll(async () => {
  await closeBrowser();
  server?.kill("SIGINT");
  rmSync(work, { recursive: true, force: true });
});

let n = 0;
/** The built CLI on a copy of `input` (a file, or a folder) in a fresh folder: every file it wrote, by path, with its sha256. */
async function cli(input: string, c: Case, folder = false): Promise<{ files: Record<string, string> } | { error: string }> {
  const dir = join(work, `cli-${n++}`);
  mkdirSync(dir);
  const copy = join(dir, basename(input));
  if (folder) {
    mkdirSync(copy);
    for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(input, f), join(copy, f));
  } else copyFileSync(input, copy);
  const r = await run(process.execPath, [KQUANT, "quantize", basename(input), ...flagsOf(c), "-q"], { cwd: dir, env: userEnv() });
  if (r.code !== 0) return { error: r.stderr.trim() };
  const files = hashesUnder(dir);
  for (const k of Object.keys(files)) if (k === basename(input) || k.startsWith(`${basename(input)}/`)) delete files[k];
  return { files };
}

const ALL: Case[] = MODES.flatMap((m) => BACKENDS.flatMap((backend) => LAYOUTS.map((layout) => ({ ...m, backend, layout }))));

describe("kquant web (built): the page's bytes are the CLI's", () => {
  for (const which of ["demo", "multi"] as const) {
    it(`${which}: every mode × backend × layout (${ALL.length} runs)`, async () => {
      const { page } = loaded;
      expect(await pick(page, inputs[which])).toBe("ready");
      for (const c of ALL) {
        const want = await cli(inputs[which], c);
        await choose(page, c);
        const saveDir = join(work, `page-${n++}`);
        mkdirSync(saveDir);
        expect(await runInPage(page, saveDir), `${which} ${label(c)}`).toEqual(want);
      }
    });
  }

  it("a model folder picked through the folder input, in every layout", async () => {
    const model = join(work, "tiny-model");
    mkdirSync(model);
    copyFileSync(inputs.demo, join(model, "model.safetensors"));
    writeFileSync(join(model, "config.json"), `${JSON.stringify({ architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 64 }, null, 2)}\n`);
    const { page } = loaded;
    await page.getByTestId("folder-input").setInputFiles(model);
    await page.waitForFunction(() => document.body.dataset.input === "ready" || document.body.dataset.input === "failed");
    expect(await page.evaluate(() => document.body.dataset.input)).toBe("ready");
    for (const layout of LAYOUTS) {
      const c: Case = { mode: "int4", blockSize: 16, backend: "tensorflow", layout };
      const want = await cli(model, c, true);
      await choose(page, c);
      const saveDir = join(work, `page-${n++}`);
      mkdirSync(saveDir);
      expect(await runInPage(page, saveDir), `folder ${label(c)}`).toEqual(want);
    }
  });

  /** The built CLI on a copy of the folder `model` in a fresh folder, run from there: what it wrote, or its error line. */
  async function cliFolder(model: string, c: FolderCase): Promise<{ files: Record<string, string> } | { error: string }> {
    const dir = join(work, `cli-${n++}`);
    mkdirSync(dir);
    const copy = copyFolder(model, dir);
    const r = await run(process.execPath, [KQUANT, "quantize", basename(model), ...folderFlagsOf(c), "-q"], { cwd: dir, env: userEnv() });
    return r.code === 0 ? { files: outputsBeside(dir, copy) } : { error: r.stderr.trim() };
  }

  const FOLDER_CASES: FolderCase[] = [
    ...SCHEME_NAMES.map((scheme): FolderCase => ({ mode: "scheme", scheme })),
    { mode: "scheme", scheme: "W4A16", ignore: ["lm_head", "re:.*odd_proj"] },
    { mode: "scheme", scheme: "NVFP4A16", ignore: ["lm_head"] },
    { mode: "mlx", mlxMode: "affine" },
    { mode: "mlx", mlxMode: "affine", bits: 4, blockSize: 64 },
    { mode: "mlx", mlxMode: "affine", bits: 8, blockSize: 32 },
    { mode: "mlx", mlxMode: "affine", bits: 3, blockSize: 64, dtype: "bfloat16" },
    { mode: "mlx", mlxMode: "affine", bits: 6, blockSize: 32, dtype: "float16" },
    { mode: "mlx", mlxMode: "mxfp4" },
    { mode: "mlx", mlxMode: "mxfp8" },
    { mode: "mlx", mlxMode: "nvfp4" },
    { mode: "mlx", mlxMode: "nvfp4", dtype: "bfloat16" },
  ];

  it(`model folders: every --scheme preset and the --mlx modes (${FOLDER_CASES.length} cases × 2 folders) give the CLI's folder`, async () => {
    const f32 = join(work, "tiny-llama");
    mkdirSync(f32);
    await writeModelFolder(f32);
    const mixed = join(work, "mixed-llama");
    mkdirSync(mixed);
    copyFileSync(inputs.multi, join(mixed, "model.safetensors"));
    writeFileSync(join(mixed, "config.json"), `${JSON.stringify({ architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 32, torch_dtype: "bfloat16" }, null, 2)}\n`);
    const { page } = loaded;
    let written = 0;
    for (const model of [f32, mixed]) {
      expect(await pickFolder(page, model)).toBe("ready");
      for (const c of FOLDER_CASES) {
        const want = await cliFolder(model, c);
        if ("files" in want) written++;
        await chooseFolderMode(page, c);
        const saveDir = join(work, `page-${n++}`);
        mkdirSync(saveDir);
        expect(await runInPage(page, saveDir), `${basename(model)} ${folderFlagsOf(c).join(" ")}`).toEqual(want);
      }
    }
    // Most cases write a folder (the mixed folder's shapes refuse some presets: those compare the error line).
    expect(written).toBeGreaterThan(FOLDER_CASES.length);
  });

  it("numpy's .npz (savez: stored, savez_compressed: deflated) in every mode on two backends and layouts", async () => {
    const python = execFileSync("bash", [join(REPO, "scripts", "pyenv.sh"), "mlx"], { encoding: "utf8" }).trim();
    execFileSync(python, [join(REPO, "test", "web", "make_npz.py"), work], { stdio: ["ignore", "ignore", "inherit"] });
    const { page } = loaded;
    const cases: Case[] = MODES.flatMap((m) => [
      { ...m, backend: "tensorflow", layout: "kquant" },
      { ...m, backend: "torch", layout: "mlx" },
    ]);
    let written = 0;
    for (const which of ["stored", "deflated"]) {
      const npz = join(work, which, "weights.npz");
      expect(await pick(page, npz)).toBe("ready");
      expect(await page.locator("#tensors tbody tr").count()).toBe(4);
      for (const c of cases) {
        const want = await cli(npz, c);
        if ("files" in want) written++;
        await choose(page, c);
        const saveDir = join(work, `page-${n++}`);
        mkdirSync(saveDir);
        expect(await runInPage(page, saveDir), `${which} ${label(c)}`).toEqual(want);
      }
    }
    // Most write files; the others are the CLI's refusals (a mode the layout cannot hold), compared as its line.
    expect(written).toBeGreaterThanOrEqual(cases.length);
  }, 10 * 60_000);

  it("requested nothing outside its origin and logged no error", () => {
    expect(loaded.requests.filter((r) => !r.startsWith(url))).toEqual([]);
    expect(loaded.errors).toEqual([]);
  });
});
