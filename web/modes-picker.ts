/**
 * The mode picker's folder modes (the page side; the worker side is folder-modes.ts): `scheme`
 * (`--scheme NAME`, llm-compressor's presets, src/modes/llmc-schemes.ts) and `mlx` (`--mlx MODE`,
 * src/modes/mlx.ts), with their own controls (data-testid scheme, ignore, mlx-mode, bits,
 * mlx-dtype; the block size is --block-size for --mlx), shown only while their mode is picked;
 * the Keras controls that do not apply to them (float8 format, backend, layout, recipe) are
 * disabled meanwhile, as the CLI refuses them there. Also the dry-run summary of a folder mode.
 */
import { MLX_LM_DTYPES, MLX_LM_MODES } from "../src/layouts/mlx-lm.js";
import { SCHEME_NAMES } from "../src/modes/llmc-schemes.js";
import { mlxModeNamed } from "../src/modes/mlx.js";
import { formatBytes } from "../src/units.js";
import { FOLDER_MODES, isFolderMode, type FolderModeChoice, type FolderModeDone, type FolderModePlan } from "./protocol.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const el = {
  scheme: $<HTMLSelectElement>("scheme"),
  ignore: $<HTMLInputElement>("ignore"),
  mlxMode: $<HTMLSelectElement>("mlx-mode"),
  bits: $<HTMLInputElement>("bits"),
  dtype: $<HTMLSelectElement>("mlx-dtype"),
};

/** The Keras controls a folder mode does not take (the CLI refuses them with --scheme / --mlx). */
export interface KerasControls {
  mode: HTMLSelectElement;
  blockSize: HTMLInputElement;
  float8: HTMLSelectElement;
  backend: HTMLSelectElement;
  layout: HTMLSelectElement;
  recipe: HTMLTextAreaElement;
}

/** Adds the folder modes to the picker before `before` (the "recipe only" option) and fills their controls from the descriptors. */
export function addFolderModes(mode: HTMLSelectElement, before: HTMLOptionElement): void {
  // As the Keras modes' options: the flag; the mode's own controls' labels say what it is.
  for (const flag of FOLDER_MODES) mode.add(new Option(flag, flag), before);
  for (const name of SCHEME_NAMES) el.scheme.add(new Option(name, name));
  el.scheme.value = SCHEME_NAMES.includes("W4A16") ? "W4A16" : SCHEME_NAMES[0]!;
  for (const m of MLX_LM_MODES) el.mlxMode.add(new Option(m, m));
  for (const d of MLX_LM_DTYPES) el.dtype.add(new Option(d, d));
}

/** The folder modes' controls, for the page's change listener. */
export function folderModeControls(): HTMLElement[] {
  return Object.values(el);
}

/** The folder modes' options as the controls hold them. */
export function folderModeChoice(): FolderModeChoice {
  const bits = el.bits.value.trim();
  return {
    scheme: el.scheme.value,
    ignore: el.ignore.value.split(/\s+/).filter((s) => s !== ""),
    mlxMode: el.mlxMode.value,
    bits: bits === "" ? null : Number(bits),
    dtype: el.dtype.value,
  };
}

const BLOCK_PLACEHOLDER = "none";

/** Shows the picked folder mode's controls and disables the Keras ones it does not take (after the page's own sync). */
export function syncFolderModes(k: KerasControls): void {
  const mode = k.mode.value;
  for (const row of document.querySelectorAll<HTMLElement>("[data-folder-mode]")) row.hidden = row.dataset.folderMode !== mode;
  const folder = isFolderMode(mode);
  for (const c of [k.float8, k.backend, k.layout, k.recipe]) c.disabled = folder || (c === k.float8 && c.disabled);
  if (mode === "scheme") k.blockSize.disabled = true;
  // --mlx's defaults are the mode's (src/modes/mlx.ts), shown where the value would go.
  const d = mlxModeNamed(el.mlxMode.value)?.defaults;
  k.blockSize.placeholder = mode === "mlx" && d ? `${d.groupSize} (default)` : BLOCK_PLACEHOLDER;
  el.bits.placeholder = d ? `${d.bits} (default)` : "";
}

/** What a finished --scheme run warns of (the CLI's "kquant: warning: NAME stays float: REASON" lines), in one line; "" for none. */
export function folderModeWarnings(report: object): string {
  if (!("kind" in report)) return "";
  const { kept } = report as FolderModeDone;
  return kept.length > 0 ? ` Stayed float: ${kept.map((k) => `${k.name} (${k.reason})`).join("; ")}.` : "";
}

function table(head: string[], rows: string[][], numeric: (col: number) => boolean): HTMLDivElement {
  const t = document.createElement("table");
  const tr = (cells: string[], tag: "th" | "td") => {
    const row = document.createElement("tr");
    cells.forEach((text, i) => {
      const c = document.createElement(tag);
      c.textContent = text;
      if (tag === "th") c.setAttribute("scope", "col");
      if (numeric(i)) c.className = "num";
      row.append(c);
    });
    return row;
  };
  t.createTHead().append(tr(head, "th"));
  const body = t.createTBody();
  for (const r of rows) body.append(tr(r, "td"));
  const scroll = document.createElement("div");
  scroll.className = "scroll";
  scroll.append(t);
  return scroll;
}

const para = (text: string, cls = ""): HTMLParagraphElement => {
  const p = document.createElement("p");
  p.textContent = text;
  if (cls) p.className = cls;
  return p;
};

/** The dry-run summary of a folder mode in `into`: --mlx's --dry-run report, or --scheme's preview. */
export function renderFolderModePlan(into: HTMLElement, plan: FolderModePlan): void {
  if (plan.kind === "mlx") {
    const r = plan.report;
    const q = r.quantization;
    into.replaceChildren(
      para(`Would write the folder ${r.output}/ (model.safetensors, config.json with mlx_lm's quantization, and the folder's other files).`),
      table(
        ["MLX mode", "bits", "group", "float dtype", "quantized", "kept", "dropped", "before", "after"],
        [[q.mode, String(q.bits), String(q.group_size), r.dtype ?? "each its own", String(r.quantized), String(r.kept), String(r.dropped), formatBytes(r.bytes_before), formatBytes(r.bytes_after)]],
        (i) => i > 0 && i !== 3,
      ),
    );
    return;
  }
  const p = plan.preview;
  const stored = p.stored.map((s) => `${s.suffix} ${s.dtype === "T" ? "(the weight's dtype)" : s.dtype}`).join(", ");
  into.replaceChildren(
    para(`Would write the folder ${p.output}/ in compressed-tensors' ${p.format} format (config.json with its quantization_config, the index, the shards).`),
    table(
      ["scheme", "tensors", "weights quantized", "kept float (shape)", "before"],
      [[p.scheme, String(p.tensors), String(p.quantized.length), String(p.kept.length), formatBytes(p.bytes_before)]],
      (i) => i > 0,
    ),
    para(p.quantized.length > 0 ? `Each quantized M.weight is stored as M.${stored}.` : `No weight can take ${p.scheme}: the run would refuse, writing nothing.`, "muted"),
    para(p.kept.length > 0 ? `Kept float: ${p.kept.map((k) => `${k.name} (${k.reason})`).join("; ")}` : "", "muted"),
    para("From the preset's descriptor and the tensors' shapes, without reading a weight: sizes, and weights whose values the format cannot hold (NaN, ±∞), are known once the run (or kquant quantize --scheme --dry-run) has read the values.", "muted"),
  );
}
