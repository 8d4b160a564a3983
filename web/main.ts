/**
 * The page: picks files, shows the inspect table, turns the controls into the CLI's options,
 * and drives the worker (worker.ts), which runs src/'s pipeline. Everything the user sees of a
 * failure is the CLI's one-line message. Hooks for tests and scripts are the data-testid
 * attributes of index.html (docs/web.md).
 */
import { LAYOUT_NAMES } from "../src/layouts/index.js";
import { allModes, modeFlags } from "../src/modes/registry.js";
import { DEFAULT_BACKEND, KERAS_BACKENDS } from "../src/quant/backend.js";
import { formatBytes } from "../src/units.js";
import { VERSION } from "../src/version.js";
import type { QuantizeReport } from "../src/pipeline/quantize/run-quantize.js";
import type { Choice, FromWorker, PickedFile, TensorRow, ToWorker } from "./protocol.js";
import { destinationText, pickDestination, pickersAvailable } from "./save-picker.js";
import { removeCreated, type Destination } from "./sink.js";
import { poolAvailable } from "./pool.js";
import { addFolderModes, folderModeChoice, folderModeControls, folderModeWarnings, renderFolderModePlan, syncFolderModes } from "./modes-picker.js";

/** Outputs larger than this are not offered as a download (a Blob the browser holds); pick a folder instead. */
export const MAX_DOWNLOAD_BYTES = 4 * 1024 ** 3;
/** Folders dropped on the page are walked at most this deep (a model folder is one or two levels). */
const MAX_DROP_DEPTH = 8;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const el = {
  fileInput: $<HTMLInputElement>("file-input"),
  folderInput: $<HTMLInputElement>("folder-input"),
  drop: $<HTMLDivElement>("drop"),
  inputName: $<HTMLParagraphElement>("input-name"),
  inspect: $<HTMLDivElement>("inspect"),
  filter: $<HTMLInputElement>("filter"),
  totals: $<HTMLParagraphElement>("inspect-totals"),
  tbody: $<HTMLTableElement>("tensors").tBodies[0]!,
  mode: $<HTMLSelectElement>("mode"),
  blockSize: $<HTMLInputElement>("block-size"),
  float8: $<HTMLSelectElement>("float8-format"),
  backend: $<HTMLSelectElement>("backend"),
  layout: $<HTMLSelectElement>("layout"),
  recipe: $<HTMLTextAreaElement>("recipe"),
  recipeStatus: $<HTMLParagraphElement>("recipe-status"),
  summary: $<HTMLDivElement>("summary"),
  saveAs: $<HTMLButtonElement>("save-as"),
  saveInto: $<HTMLButtonElement>("save-into"),
  saveClear: $<HTMLButtonElement>("save-clear"),
  destination: $<HTMLParagraphElement>("destination"),
  threads: $<HTMLInputElement>("threads"),
  threadsNote: $<HTMLParagraphElement>("threads-note"),
  quantize: $<HTMLButtonElement>("quantize"),
  cancel: $<HTMLButtonElement>("cancel"),
  progress: $<HTMLProgressElement>("progress"),
  progressText: $<HTMLParagraphElement>("progress-text"),
  outputs: $<HTMLDivElement>("outputs"),
  outputList: $<HTMLUListElement>("output-list"),
  download: $<HTMLAnchorElement>("download"),
  manifest: $<HTMLAnchorElement>("manifest-download"),
  saveFolder: $<HTMLButtonElement>("save-folder"),
  limits: $<HTMLParagraphElement>("limits"),
  report: $<HTMLDivElement>("report"),
  reportDownload: $<HTMLAnchorElement>("report-download"),
  checkNote: $<HTMLParagraphElement>("check-note"),
  error: $<HTMLDivElement>("error"),
};

// The mode picker is the registry's: its flags (the CLI's, without dashes), then "recipe only";
// the formats of a flag that has them (--float8 e5m2), by kquant's name for each.
const recipeOnly = el.mode.options[0]!;
for (const flag of modeFlags()) el.mode.add(new Option(flag, flag), recipeOnly);
addFolderModes(el.mode, recipeOnly);
el.mode.value = modeFlags()[0]!;
const formatsOf = (flag: string) => allModes().filter((m) => m.flag === flag && m.formats !== undefined);
const formatFlag = modeFlags().find((f) => formatsOf(f).length > 0);
for (const m of formatFlag ? formatsOf(formatFlag) : []) el.float8.add(new Option(m.formats![0]!, m.formats![0]!));
// The defaults first, as the CLI's.
for (const b of [DEFAULT_BACKEND, ...KERAS_BACKENDS.filter((x) => x !== DEFAULT_BACKEND)]) el.backend.add(new Option(b, b));
for (const l of LAYOUT_NAMES) el.layout.add(new Option(l, l === "kquant" ? "" : l));
$("version").textContent = VERSION;
el.limits.textContent = `Downloads are offered up to ${formatBytes(MAX_DOWNLOAD_BYTES)} per file; for larger outputs, save to a folder (or choose where to save before the run).`;

let worker = newWorker();
let picked: PickedFile[] = [];
let tensors: TensorRow[] = [];
let running = false;
let urls: string[] = [];
let lastOutputs: { path: string; blob: Blob }[] = [];
let lastOutputName = "";
const CHECK_NOTE = el.checkNote.textContent;

function newWorker(): Worker {
  const w = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  // A stopped worker's last messages are dropped: its run's paths are already being removed.
  w.onmessage = (e: MessageEvent<FromWorker>) => {
    if (w === worker) onMessage(e.data);
  };
  w.onerror = (e) => showError(`kquant: internal error: ${e.message}`);
  return w;
}

function send(msg: ToWorker): void {
  worker.postMessage(msg);
}

function showError(text: string): void {
  el.error.textContent = text;
}

function choice(): Choice {
  const block = el.blockSize.value.trim();
  return {
    mode: el.mode.value,
    blockSize: block === "" ? null : Number(block),
    float8Format: el.float8.value,
    backend: el.backend.value,
    layout: el.layout.value,
    recipe: el.recipe.value,
    folder: folderModeChoice(),
  };
}

/** The run's state on <body data-state>, for scripts and tests: idle, running, done, failed, cancelled. */
function setState(state: "idle" | "running" | "done" | "failed" | "cancelled"): void {
  document.body.dataset.state = state;
}

function syncControls(): void {
  // --block-size goes with any flag, as on the command line (int4 grouped; int8 in MLX's groups); the CLI's checks answer the rest.
  el.blockSize.disabled = el.mode.value === "";
  el.float8.disabled = el.mode.value !== formatFlag;
  el.quantize.disabled = running || tensors.length === 0;
  el.cancel.disabled = !running;
  syncDestination();
  syncFolderModes(el);
}

// ---- input -------------------------------------------------------------------------------

function open(files: PickedFile[]): void {
  if (running) return;
  picked = files;
  tensors = [];
  destination = null;
  plannedOutput = "";
  setState("idle");
  document.body.dataset.input = "reading";
  clearOutputs();
  el.progress.value = 0;
  el.progressText.textContent = "";
  el.checkNote.textContent = CHECK_NOTE;
  showError("");
  el.inspect.hidden = true;
  el.inputName.textContent = files.length === 1 ? `Reading ${files[0]!.path}…` : `Reading ${files.length} files…`;
  syncControls();
  send({ type: "open", files });
}

el.fileInput.addEventListener("change", () => {
  open([...(el.fileInput.files ?? [])].map((file) => ({ path: file.name, file })));
  el.fileInput.value = "";
});
el.folderInput.addEventListener("change", () => {
  open([...(el.folderInput.files ?? [])].map((file) => ({ path: file.webkitRelativePath || file.name, file })));
  el.folderInput.value = "";
});

el.drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  el.drop.classList.add("over");
});
el.drop.addEventListener("dragleave", () => el.drop.classList.remove("over"));
el.drop.addEventListener("drop", (e) => {
  e.preventDefault();
  el.drop.classList.remove("over");
  const entries = [...(e.dataTransfer?.items ?? [])].map((i) => i.webkitGetAsEntry()).filter((x): x is FileSystemEntry => x !== null);
  filesOf(entries).then(open, (err: unknown) => showError(`kquant: ${(err as Error).message}`));
});

/** The files under dropped entries, walked breadth first to MAX_DROP_DEPTH, with paths relative to the drop. */
async function filesOf(roots: FileSystemEntry[]): Promise<PickedFile[]> {
  const out: PickedFile[] = [];
  let level: { entry: FileSystemEntry; path: string }[] = roots.map((entry) => ({ entry, path: entry.name }));
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > MAX_DROP_DEPTH) throw new Error(`the dropped folder is nested deeper than ${MAX_DROP_DEPTH} levels`);
    const next: typeof level = [];
    for (const { entry, path } of level) {
      if (entry.isFile) {
        out.push({ path, file: await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej)) });
      } else if (entry.isDirectory) {
        const reader = (entry as FileSystemDirectoryEntry).createReader();
        for (;;) {
          const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
          if (batch.length === 0) break;
          for (const child of batch) next.push({ entry: child, path: `${path}/${child.name}` });
        }
      }
    }
    level = next;
  }
  return out;
}

const count = (shape: number[]) => shape.reduce((n, d) => n * d, 1);

function renderTensors(): void {
  const q = el.filter.value.trim().toLowerCase();
  const shown = q === "" ? tensors : tensors.filter((t) => t.name.toLowerCase().includes(q));
  const rows = shown.slice(0, 2000).map((t) => {
    const tr = document.createElement("tr");
    const cells: [string, string][] = [
      [t.name, "name"],
      [t.dtype, ""],
      [`[${t.shape.join(", ")}]`, ""],
      [count(t.shape).toLocaleString("en-US"), "num"],
      [formatBytes(t.byteLength), "num"],
    ];
    for (const [text, cls] of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    return tr;
  });
  el.tbody.replaceChildren(...rows);
  const params = tensors.reduce((n, t) => n + count(t.shape), 0);
  const bytes = tensors.reduce((n, t) => n + t.byteLength, 0);
  const more = shown.length > rows.length ? ` (first ${rows.length} shown)` : "";
  el.totals.textContent = `${tensors.length} tensors, ${params.toLocaleString("en-US")} parameters, ${formatBytes(bytes)}${q ? `; ${shown.length} match${more}` : more}`;
}
el.filter.addEventListener("input", renderTensors);

// ---- choices, recipe and dry run ---------------------------------------------------------

let planTimer: ReturnType<typeof setTimeout> | undefined;
function sendPlan(): void {
  clearTimeout(planTimer);
  planTimer = undefined;
  send({ type: "recipe", text: el.recipe.value });
  if (tensors.length > 0 && !running) send({ type: "plan", choice: choice() });
}
function replan(): void {
  syncControls();
  clearTimeout(planTimer);
  planTimer = setTimeout(sendPlan, 120);
}
for (const c of [el.mode, el.blockSize, el.float8, el.backend, el.layout, el.recipe, ...folderModeControls()]) c.addEventListener("input", replan);

function renderSummary(r: QuantizeReport): void {
  const table = document.createElement("table");
  table.innerHTML = '<thead><tr><th scope="col">mode</th><th scope="col" class="num">tensors</th><th scope="col" class="num">parameters</th><th scope="col" class="num">bits/weight</th><th scope="col" class="num">before</th><th scope="col" class="num">after</th></tr></thead><tbody></tbody>';
  const rows = [...Object.entries(r.summary.by_mode), ["total", r.summary] as const];
  for (const [mode, t] of rows) {
    const tr = document.createElement("tr");
    for (const [text, num] of [
      [mode, false],
      [String(t.tensors), true],
      [t.parameters.toLocaleString("en-US"), true],
      [t.bits_per_weight.toFixed(2), true],
      [formatBytes(t.bytes_before), true],
      [formatBytes(t.bytes_after), true],
    ] as const) {
      const td = document.createElement("td");
      td.textContent = text;
      if (num) td.className = "num";
      tr.append(td);
    }
    table.tBodies[0]!.append(tr);
  }
  const p = document.createElement("p");
  p.textContent = `Would write ${r.output} and its manifest ${r.manifest}.`;
  const reasons = r.summary.passthrough_reasons.map(({ reason, tensors }) => `${tensors} × ${reason}`);
  const kept = document.createElement("p");
  kept.className = "muted";
  kept.textContent = reasons.length > 0 ? `Kept as they are: ${reasons.join("; ")}` : "";
  const scroll = document.createElement("div");
  scroll.className = "scroll";
  scroll.append(table);
  el.summary.replaceChildren(p, scroll, kept);
}

// ---- run -------------------------------------------------------------------------------------

/**
 * The verify report (src/report/html.ts, the page `kquant verify --html` writes) in a sandboxed
 * frame: it inherits this page's policy, which allows its one style and script by hash.
 */
function showReport(html: string, status: string): void {
  const frame = document.createElement("iframe");
  frame.title = "verify report";
  frame.setAttribute("sandbox", "allow-scripts");
  frame.srcdoc = html;
  el.report.replaceChildren(frame);
  el.checkNote.textContent = status;
  const name = `${baseName(lastOutputName).replace(/\.safetensors(\.index\.json)?$/, "")}.verify.html`;
  linkTo(el.reportDownload, name, new Blob([html], { type: "text/html" }));
  el.reportDownload.textContent = `Download ${name}`;
  el.reportDownload.hidden = false;
}

function clearOutputs(): void {
  el.report.replaceChildren();
  el.reportDownload.hidden = true;
  for (const u of urls) URL.revokeObjectURL(u);
  urls = [];
  lastOutputs = [];
  el.outputs.hidden = true;
  el.outputList.replaceChildren();
  el.download.removeAttribute("href");
  el.manifest.removeAttribute("href");
}

el.quantize.addEventListener("click", () => {
  if (running || tensors.length === 0) return;
  // A dry run still waiting on its timer goes first: answered after the run, it would clear the run's error.
  if (planTimer !== undefined) sendPlan();
  clearOutputs();
  showError("");
  running = true;
  setState("running");
  el.progress.value = 0;
  el.progressText.textContent = "Starting…";
  syncControls();
  created = [];
  const threads = threadsAsked();
  send({ type: "run", choice: choice(), totalBytes: tensors.reduce((n, t) => n + t.byteLength, 0), ...(destination ? { destination } : {}), ...(threads !== null ? { threads } : {}) });
});

el.cancel.addEventListener("click", () => {
  if (!running) return;
  // The worker holds everything the run wrote; terminating it stops the run at once and drops it all.
  worker.terminate();
  running = false;
  setState("cancelled");
  el.progress.value = 0;
  el.progressText.textContent = "Cancelled: nothing was written.";
  removeStopped();
  worker = newWorker();
  if (picked.length > 0) send({ type: "open", files: picked });
  syncControls();
});

const MiB = 1024 * 1024;
function renderProgress(done: number, total: number, elapsedMs: number): void {
  el.progress.value = total > 0 ? done / total : 1;
  const rate = elapsedMs > 0 ? done / MiB / (elapsedMs / 1000) : 0;
  const eta = rate > 0 ? (total - done) / MiB / rate : NaN;
  el.progressText.textContent = `${formatBytes(done)} of ${formatBytes(total)}, ${rate.toFixed(1)} MiB/s${Number.isFinite(eta) ? `, ETA ${eta.toFixed(1)} s` : ""}`;
}

const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1);

function linkTo(a: HTMLAnchorElement, path: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  urls.push(url);
  a.href = url;
  a.download = baseName(path);
}

function showOutputs(report: { output: string; manifest?: string }, outputs: { path: string; blob: Blob; saved: boolean }[]): void {
  lastOutputs = outputs.filter((o) => !o.saved);
  const key = (p: string) => p.replace(/^\/+/, "");
  const main = outputs.find((o) => key(o.path) === key(report.output)) ?? outputs.find((o) => !o.path.endsWith(".json")) ?? outputs[0];
  const manifest = report.manifest === undefined ? undefined : outputs.find((o) => key(o.path) === key(report.manifest!));
  const items = outputs.map((o) => {
    const li = document.createElement("li");
    if (o.saved) {
      // Written to the destination picked: nothing of it is in the page to download.
      const span = document.createElement("span");
      span.dataset.testid = "saved-file";
      span.textContent = `${key(o.path)} (${formatBytes(o.blob.size)}), saved`;
      li.append(span);
      return li;
    }
    const a = document.createElement("a");
    a.dataset.testid = "output-file";
    a.textContent = `${key(o.path)} (${formatBytes(o.blob.size)})`;
    if (o.blob.size <= MAX_DOWNLOAD_BYTES) linkTo(a, o.path, o.blob);
    li.append(a);
    return li;
  });
  el.outputList.replaceChildren(...items);
  const offered = (o: (typeof outputs)[number] | undefined) => o !== undefined && !o.saved;
  el.download.hidden = !offered(main);
  el.manifest.hidden = !offered(manifest);
  if (offered(main) && main!.blob.size <= MAX_DOWNLOAD_BYTES) linkTo(el.download, main!.path, main!.blob);
  el.download.textContent = main ? `Download ${baseName(main.path)}` : "Download";
  if (offered(manifest)) linkTo(el.manifest, manifest!.path, manifest!.blob);
  el.manifest.textContent = manifest ? `Download ${baseName(manifest.path)}` : "Download the manifest";
  el.saveFolder.hidden = !("showDirectoryPicker" in window) || lastOutputs.length === 0;
  el.outputs.hidden = false;
}

el.saveFolder.addEventListener("click", () => {
  saveToFolder().catch((err: unknown) => {
    if ((err as Error).name !== "AbortError") showError(`kquant: cannot save to the folder (${(err as Error).message})`);
  });
});

interface DirHandle {
  getDirectoryHandle(name: string, o: { create: boolean }): Promise<DirHandle>;
  getFileHandle(name: string, o: { create: boolean }): Promise<{ createWritable(): Promise<WritableStream> }>;
}

/** Streams every output into a folder the user picks (File System Access API), in the CLI's names. */
async function saveToFolder(): Promise<void> {
  const root = await (window as unknown as { showDirectoryPicker(o: object): Promise<DirHandle> }).showDirectoryPicker({ mode: "readwrite" });
  for (const o of lastOutputs) {
    const parts = o.path.split("/").filter(Boolean);
    let dir = root;
    for (const p of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(p, { create: true });
    const fh = await dir.getFileHandle(parts[parts.length - 1]!, { create: true });
    // The browser writes to a swap file and replaces the target on close: never a half-written file.
    await o.blob.stream().pipeTo(await fh.createWritable());
  }
  el.progressText.textContent = `Saved ${lastOutputs.length} file(s).`;
}

// ---- destination: where the outputs are written as they are made (sink.ts) -------------------

/** The file or folder picked for the next run; null: its outputs are offered as downloads. */
let destination: Destination | null = null;
/** The main output the dry run names (the page's file system path). */
let plannedOutput = "";
/** What the current run created in the folder picked (the worker says so before it creates each). */
let created: string[] = [];

function syncDestination(): void {
  const can = pickersAvailable();
  const oneFile = /\.safetensors$/.test(plannedOutput);
  el.saveAs.hidden = !can.file;
  el.saveInto.hidden = !can.folder;
  el.saveAs.disabled = running || !oneFile || tensors.length === 0;
  el.saveInto.disabled = running || tensors.length === 0;
  el.saveClear.hidden = destination === null;
  el.saveClear.disabled = running;
  el.destination.textContent = destinationText(destination, formatBytes(MAX_DOWNLOAD_BYTES));
}

async function chooseDestination(kind: "file" | "folder"): Promise<void> {
  const chosen = await pickDestination(kind, plannedOutput);
  if (chosen !== null) destination = chosen;
  syncDestination();
}
for (const [button, kind] of [
  [el.saveAs, "file"],
  [el.saveInto, "folder"],
] as const) {
  button.addEventListener("click", () => {
    if (running) return;
    chooseDestination(kind).catch((err: unknown) => showError(`kquant: cannot write there (${(err as Error).message})`));
  });
}
el.saveClear.addEventListener("click", () => {
  destination = null;
  syncDestination();
});

/** After a run the page stopped: removes what it created in the folder picked (its streams are discarded with the worker). */
function removeStopped(): void {
  const dest = destination;
  const paths = created;
  destination = null;
  created = [];
  if (dest?.kind !== "folder" || paths.length === 0) return;
  el.progressText.textContent = "Cancelled: removing what the run created…";
  void removeCreated(dest.handle, paths).then((left) => {
    if (document.body.dataset.state !== "cancelled") return;
    el.progressText.textContent = left.length === 0 ? "Cancelled: nothing was written." : `Cancelled: could not remove ${left.join(", ")} from the folder picked.`;
  });
}

// ---- workers: the CLI's pool of Web Workers (pool.ts) -----------------------------------------

/** The Workers control: a count (0: the page's one worker alone, as --threads 0), or null for the CLI's default. */
function threadsAsked(): number | null {
  const v = el.threads.value.trim();
  return v === "" || !poolAvailable() ? null : Math.max(0, Math.floor(Number(v)));
}
el.threads.disabled = !poolAvailable();
el.threadsNote.textContent = poolAvailable()
  ? `Empty: as the CLI, one worker per core up to 4 (this browser reports ${navigator.hardwareConcurrency} cores), none for a small input. The bytes are the same for any count.`
  : "One worker: several need a cross-origin isolated page (served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, as kquant web serves it).";

// ---- worker messages -------------------------------------------------------------------------

function onMessage(msg: FromWorker): void {
  switch (msg.type) {
    case "opened": {
      tensors = msg.tensors;
      document.body.dataset.input = "ready";
      el.inputName.textContent = `Input: ${msg.input}`;
      el.inspect.hidden = false;
      renderTensors();
      replan();
      break;
    }
    case "recipe-ok":
      el.recipe.removeAttribute("aria-invalid");
      el.recipeStatus.textContent = el.recipe.value.trim() === "" ? "" : "Recipe OK.";
      break;
    case "planned":
      renderSummary(msg.report);
      plannedOutput = msg.report.output;
      syncDestination();
      if (!running) showError("");
      break;
    case "created":
      created.push(msg.path);
      send({ type: "created-noted", id: msg.id });
      break;
    case "planned-folder-mode":
      renderFolderModePlan(el.summary, msg.plan);
      if (!running) showError("");
      break;
    case "progress":
      if (running) renderProgress(msg.done, msg.total, msg.elapsedMs);
      break;
    case "done":
      running = false;
      renderProgress(msg.report.bytes_before, msg.report.bytes_before, msg.elapsedMs);
      el.progressText.textContent += ` — done in ${(msg.elapsedMs / 1000).toFixed(2)} s.${folderModeWarnings(msg.report)}`;
      showOutputs(msg.report, msg.outputs);
      destination = null;
      setState("done");
      syncControls();
      el.checkNote.textContent = "Reading the output back and comparing it with the input…";
      lastOutputName = msg.report.output;
      send({ type: "verify", output: msg.report.output });
      break;
    case "verified":
      showReport(msg.html, msg.status);
      break;
    case "error":
      if (msg.request === "recipe") {
        el.recipe.setAttribute("aria-invalid", "true");
        el.recipeStatus.textContent = msg.text;
        break;
      }
      if (msg.request === "open") {
        document.body.dataset.input = "failed";
        tensors = [];
        el.inputName.textContent = "";
        el.summary.replaceChildren();
      }
      if (msg.request === "run") {
        running = false;
        setState("failed");
        el.progress.value = 0;
        el.progressText.textContent = "Stopped: nothing was written.";
        destination = null;
      }
      showError(msg.text);
      syncControls();
      break;
  }
}

setState("idle");
syncControls();
