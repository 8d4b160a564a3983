/**
 * The page's Web Worker: src/'s readers, planner, kernels and writers, run here (with a pool of
 * workers of its own where the page is cross-origin isolated, pool.ts) on the page's file system (vfs.ts), exactly as `kquant quantize` runs them. The page (main.ts)
 * posts the files the user picked and the options; this answers with the tensors, the dry-run
 * report, progress, and the written files as Blobs. Cancel terminates this worker: its memory,
 * written files included, goes with it.
 */
import { KquantError } from "../src/errors.js";
import { openTensors } from "../src/formats/open.js";
import { layoutNamed } from "../src/layouts/index.js";
import { runQuantize, type QuantizeReport } from "../src/pipeline/quantize/run-quantize.js";
import { parseRecipe } from "../src/plan/recipe.js";
import { jobRulesOf, type ModeOptions } from "../src/plan/quantize-flags.js";
import { isKerasBackend } from "../src/quant/backend.js";
import { allModes } from "../src/modes/registry.js";
import { HISTOGRAM_BINS } from "../src/quant/error-histogram.js";
import { runVerify } from "../src/pipeline/read-back/verify.js";
import { renderVerifyHtml } from "../src/report/html.js";
import { verifyStatusLine } from "../src/report/status.js";
import { blobOf, clearWritten, inputBytesRead, mount, reset, writtenFiles } from "./vfs.js";
import { writingTo } from "./sink.js";
import { runThreads } from "./pool.js";
import { inputOf, isFolderMode, type Choice, type FolderModeDone, type FromWorker, type ToWorker } from "./protocol.js";
import { folderModeBytesToRead, planFolderMode, runFolderMode } from "./folder-modes.js";

/** The recipe textarea's file name: it names the output as `--recipe recipe.json` does. */
export const RECIPE_FILE = "recipe.json";

let input: string | null = null;

function post(message: FromWorker, transfer: Transferable[] = []): void {
  (self as unknown as Worker).postMessage(message, transfer);
}

/** The page's choices as the CLI's options (src/cli/quantize.ts parses the same flags into the same shape). */
function jobOf(choice: Choice) {
  if (!isKerasBackend(choice.backend)) throw new KquantError({ file: "--keras-backend", what: `unknown backend ${choice.backend}` });
  // The mode flag as commander gives it: true, or the format of a flag that takes one (--float8 e5m2).
  const takesFormat = allModes().some((m) => m.flag === choice.mode && m.formats !== undefined);
  const opts: ModeOptions = {
    kerasBackend: choice.backend,
    ...(choice.layout !== "" ? { layout: layoutNamed(choice.layout) } : {}),
    ...(choice.mode !== "" ? { [choice.mode]: takesFormat ? choice.float8Format : true } : {}),
    ...(choice.mode !== "" && choice.blockSize !== null ? { blockSize: choice.blockSize } : {}),
  };
  const recipe = choice.recipe.trim() === "" ? undefined : { fileName: RECIPE_FILE, rules: parseRecipe(RECIPE_FILE, choice.recipe) };
  return { ...jobRulesOf(opts, recipe), ...(opts.layout ? { layout: opts.layout } : {}), layoutName: opts.layout?.name };
}

/** The picked input's path (folder, index or file), as the CLI is given it. */
function inputPath(): string {
  if (input === null) throw new KquantError({ what: "no input file picked" });
  return input;
}

/** `threads`: as runQuantize takes it (undefined: the CLI's default). */
async function quantize(choice: Choice, dryRun: boolean, threads: number | undefined): Promise<QuantizeReport> {
  if (input === null) throw new KquantError({ what: "no input file picked" });
  const { rules, tag, options, layout, layoutName } = jobOf(choice);
  return runQuantize({
    input,
    rules,
    tag,
    options: { ...options, ...(layoutName ? { layout: layoutName } : {}) },
    ...(layout ? { layout } : {}),
    dryRun,
    quiet: true,
    ...(threads !== undefined ? { threads } : {}),
  });
}

function errorText(err: unknown): string {
  if (err instanceof KquantError) return err.format();
  const e = err as Error;
  // A pool worker's failure arrives as its message alone (workers.ts WorkerError): V8's words for an allocation that failed.
  if (e?.name === "QuotaExceededError" || e instanceof RangeError || /^Array buffer allocation failed$|out of memory/i.test(e?.message ?? "")) {
    return `kquant: out of memory or storage in the browser (${e.message})`;
  }
  return `kquant: internal error: ${e?.message ?? String(err)}`;
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case "open": {
      reset();
      input = null;
      for (const f of msg.files) mount(f.path, f.file);
      input = inputOf(msg.files.map((f) => f.path));
      const reader = await openTensors(input);
      try {
        post({ type: "opened", input, metadata: reader.metadata, tensors: reader.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength, file: t.file })) });
      } finally {
        await reader.close();
      }
      return;
    }
    case "recipe": {
      if (msg.text.trim() !== "") parseRecipe(RECIPE_FILE, msg.text);
      post({ type: "recipe-ok" });
      return;
    }
    case "plan": {
      // --scheme and --mlx: folder-modes.ts.
      if (isFolderMode(msg.choice.mode)) post({ type: "planned-folder-mode", plan: await planFolderMode(inputPath(), msg.choice) });
      else post({ type: "planned", report: await quantize(msg.choice, true, 0) });
      return;
    }
    case "run": {
      clearWritten();
      const total = isFolderMode(msg.choice.mode) ? await folderModeBytesToRead(inputPath(), msg.choice, msg.totalBytes) : msg.totalBytes;
      const started = performance.now();
      const timer = setInterval(() => post({ type: "progress", done: Math.min(inputBytesRead, total), total, elapsedMs: performance.now() - started }), 200);
      let ran: { result: QuantizeReport | FolderModeDone; saved: string[] };
      try {
        const threads = runThreads(msg.threads ?? null);
        const run = (): Promise<QuantizeReport | FolderModeDone> => (isFolderMode(msg.choice.mode) ? runFolderMode(inputPath(), msg.choice, threads) : quantize(msg.choice, false, threads));
        ran = await writingTo(msg.destination, notePath, run);
      } finally {
        clearInterval(timer);
      }
      const { result: report } = ran;
      const saved = new Set(ran.saved.map((p) => `/${p}`));
      const outputs = writtenFiles().map((path) => ({ path, blob: blobOf(path)!, saved: saved.has(path) }));
      post({ type: "done", report, outputs, elapsedMs: performance.now() - started });
      return;
    }
    case "verify": {
      if (input === null) throw new KquantError({ what: "no input file picked" });
      // As `kquant verify OUTPUT --against INPUT --html FILE` runs it (src/cli/verify.ts).
      const report = await runVerify(msg.output, { against: input, histogramBins: HISTOGRAM_BINS, threads: 0 });
      post({ type: "verified", html: renderVerifyHtml(report), ok: report.ok, status: verifyStatusLine(report) });
      return;
    }
  }
}

/** One request at a time, in the order posted: a dry run never reads while a run resets the files. */
let queue: Promise<void> = Promise.resolve();

/** Paths posted as "created" that the page has not noted yet, by id. */
const notes = new Map<number, () => void>();
let nextNote = 0;
/** Resolves once the page has noted `path` (what it removes if it stops the run), before the run creates it. */
function notePath(path: string): Promise<void> {
  const id = nextNote++;
  return new Promise((resolve) => {
    notes.set(id, resolve);
    post({ type: "created", id, path });
  });
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  // An answer to a run in progress: it cannot wait behind that run in the queue.
  if (msg.type === "created-noted") {
    notes.get(msg.id)?.();
    notes.delete(msg.id);
    return;
  }
  queue = queue.then(() => handle(msg).catch((err: unknown) => post({ type: "error", request: msg.type, text: errorText(err) })));
};
