/**
 * `kquant verify --html`: the verify report as one self-contained HTML page. Styles, the table's
 * sort script and the charts (inline SVG) are all inside the page, and its Content-Security-Policy
 * forbids loading anything, so opening it makes no network request. Every name from the files is
 * escaped. The page depends on the report alone (no clock, no environment): the same report gives
 * the same bytes.
 */
import { formatNumber } from "../cli/present.js";
import type { TensorVerdict, VerifyReport } from "../pipeline/read-back/verify.js";
import { histogramChart, sqnrChart } from "./charts.js";
import { escapeHtml as esc } from "./escape.js";
import { verifyStatusLine } from "./status.js";

export interface HtmlOptions {
  /** How many of the worst tensors (lowest SQNR) get an error histogram; 4 by default. */
  histograms?: number;
}

/** Measured tensors, lowest SQNR first (file order among equals). */
function worstFirst(tensors: readonly TensorVerdict[]): (TensorVerdict & { metrics: NonNullable<TensorVerdict["metrics"]> })[] {
  return tensors
    .filter((t): t is TensorVerdict & { metrics: NonNullable<TensorVerdict["metrics"]> } => t.metrics !== undefined)
    .sort((a, b) => (a.metrics.sqnrDb === b.metrics.sqnrDb ? 0 : a.metrics.sqnrDb < b.metrics.sqnrDb ? -1 : 1));
}

/** The whole page for `report` (as `runVerify` returns it; histograms appear when it ran with `histogramBins`). */
export function renderVerifyHtml(report: VerifyReport, opts: HtmlOptions = {}): string {
  const s = report.summary;
  const measured = worstFirst(report.tensors);
  const withHistogram = measured.filter((t) => t.error_histogram !== undefined).slice(0, opts.histograms ?? 4);
  const status = verifyStatusLine(report);

  const facts: [string, string][] = [
    ["Quantized file", report.file],
    ["Original", report.against ?? "none (give --against to measure the error)"],
  ];
  const t = report.thresholds;
  const gates = [
    ...(t.minSqnr !== undefined ? [`SQNR ≥ ${t.minSqnr} dB`] : []),
    ...(t.minCosine !== undefined ? [`cosine ≥ ${t.minCosine}`] : []),
    ...(t.maxAbsError !== undefined ? [`max |error| ≤ ${t.maxAbsError}`] : []),
    ...(t.minSqnrByMode !== undefined ? [`default floor: SQNR ≥ ${Object.entries(t.minSqnrByMode).map(([m, v]) => `${v} dB (${m})`).join(", ")}`] : []),
  ];
  facts.push(["Thresholds", gates.length ? gates.join(", ") : "none"]);
  if (s.min_sqnr_db !== null) {
    facts.push(["SQNR", `min ${formatNumber(s.min_sqnr_db)} dB, mean ${formatNumber(s.mean_sqnr_db)} dB`]);
    facts.push(["Cosine", `min ${formatNumber(s.min_cosine, 6)}`]);
    facts.push(["Max |error|", formatNumber(s.max_abs_error)]);
  }

  const body: string[] = [];
  body.push(`<header><h1>kquant verify</h1><p class="status ${report.ok ? "ok" : "fail"}">${esc(status)}</p>`);
  body.push(`<dl>${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl></header>`);
  if (report.file_problems.length > 0) {
    body.push(`<section id="file-problems"><h2>File problems</h2><ul>${report.file_problems.map((p) => `<li>${esc(p)}</li>`).join("")}</ul></section>`);
  }

  body.push(`<section id="sqnr-chart"><h2>SQNR per tensor, worst first</h2>`);
  if (measured.length === 0) {
    body.push(`<p class="none">No tensor was measured${report.against === null ? ": give --against ORIGINAL" : ""}.</p>`);
  } else {
    body.push(`<p class="note">Signal-to-quantization-noise ratio in dB: higher is closer to the original.${t.minSqnr !== undefined ? " The dashed line is --min-sqnr." : ""}</p>`);
    body.push(`<div class="scroll">${sqnrChart(measured.map((m) => ({ name: m.name, sqnrDb: m.metrics.sqnrDb, ok: m.ok })), t.minSqnr)}</div>`);
  }
  body.push(`</section>`);

  if (withHistogram.length > 0) {
    body.push(`<section id="histograms"><h2>Error histograms of the ${withHistogram.length} worst tensors</h2><div class="figures">`);
    for (const m of withHistogram) {
      const h = m.error_histogram!;
      body.push(
        `<figure class="histogram" data-name="${esc(m.name)}" data-count="${m.metrics.count}">${histogramChart(h, m.name)}` +
          `<figcaption><code>${esc(m.name)}</code> (${esc(m.mode)}): SQNR ${esc(formatNumber(m.metrics.sqnrDb))} dB, ` +
          `${m.metrics.count} values in ${h.counts.length} bins over ±${esc(formatNumber(h.limit))}</figcaption></figure>`,
      );
    }
    body.push(`</div></section>`);
  }

  body.push(`<section id="tensors"><h2>Tensors</h2><p class="note">Click a column heading to sort.</p>${tensorTable(report.tensors)}</section>`);

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>kquant verify: ${esc(report.file)}</title>
<style>${REPORT_STYLE}</style>
</head>
<body>
${body.join("\n")}
<script>${REPORT_SCRIPT}</script>
</body>
</html>
`;
}

interface Column {
  title: string;
  numeric: boolean;
  /** Shown text and, for numbers, the sort key (empty: no value, sorted last). */
  cell: (t: TensorVerdict) => { text: string; sort?: number };
}

const metric = (pick: (m: NonNullable<TensorVerdict["metrics"]>) => number, digits?: number) => (t: TensorVerdict) =>
  t.metrics ? { text: formatNumber(pick(t.metrics), digits), sort: pick(t.metrics) } : { text: "–" };

const COLUMNS: Column[] = [
  { title: "Tensor", numeric: false, cell: (t) => ({ text: t.name }) },
  { title: "Mode", numeric: false, cell: (t) => ({ text: t.mode }) },
  { title: "Status", numeric: false, cell: (t) => ({ text: t.ok ? "ok" : "FAIL" }) },
  { title: "SQNR (dB)", numeric: true, cell: metric((m) => m.sqnrDb) },
  { title: "Cosine", numeric: true, cell: metric((m) => m.cosine, 6) },
  { title: "Max |error|", numeric: true, cell: metric((m) => m.maxAbsError) },
  { title: "RMSE", numeric: true, cell: metric((m) => m.rmse) },
  { title: "Values", numeric: true, cell: (t) => (t.metrics ? { text: String(t.metrics.count), sort: t.metrics.count } : { text: "–" }) },
  { title: "Problems", numeric: false, cell: (t) => ({ text: [...t.problems, ...t.gate_failures].join("; ") }) },
];

/** One row per tensor, in the report's (file) order. */
function tensorTable(tensors: readonly TensorVerdict[]): string {
  const head = COLUMNS.map((c) => `<th scope="col"${c.numeric ? ' data-type="number"' : ""} tabindex="0">${esc(c.title)}</th>`).join("");
  const rows = tensors.map((t) => {
    const cells = COLUMNS.map((c) => {
      const { text, sort } = c.cell(t);
      if (!c.numeric) return `<td>${esc(text)}</td>`;
      return `<td class="num" data-sort="${sort === undefined ? "" : String(sort)}">${esc(text)}</td>`;
    });
    return `<tr class="${t.ok ? "ok" : "fail"}">${cells.join("")}</tr>`;
  });
  return `<table class="sortable"><thead><tr>${head}</tr></thead><tbody>\n${rows.join("\n")}\n</tbody></table>`;
}

/** The report's stylesheet (its <style>); the page (web/) allows it in its iframe by hash. */
export const REPORT_STYLE = `
:root { color-scheme: light; --ok: #2f6db5; --fail: #c0392b; --grid: #e3e6ea; --ink: #1d2329; --muted: #5f6b76; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); margin: 24px auto; max-width: 1200px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 6px; } h2 { font-size: 17px; margin: 28px 0 6px; }
.status { font-weight: 600; padding: 6px 10px; border-radius: 4px; display: inline-block; margin: 0 0 10px; }
.status.ok { background: #e6f1e8; color: #1e6b34; } .status.fail { background: #fbe9e7; color: var(--fail); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
.note, .none { color: var(--muted); margin: 0 0 8px; }
.scroll { overflow-x: auto; }
svg.chart text { font: 11px ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; fill: var(--ink); }
svg.chart .tick, svg.chart .axis-title { fill: var(--muted); }
svg .grid { stroke: var(--grid); } svg .axis { stroke: var(--muted); } svg .zero { stroke: var(--muted); stroke-dasharray: 2 3; }
svg .threshold { stroke: var(--fail); stroke-width: 1.5; stroke-dasharray: 5 4; }
svg .bar.ok { fill: var(--ok); } svg .bar.fail { fill: var(--fail); } svg .bar.exact { fill-opacity: 0.35; }
svg .hist-bar { fill: #7a5cc2; }
.figures { display: flex; flex-wrap: wrap; gap: 12px 24px; }
figure { margin: 0; } figcaption { font-size: 12px; color: var(--muted); max-width: 440px; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--grid); text-align: left; vertical-align: top; }
td:first-child { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; overflow-wrap: anywhere; }
th { position: sticky; top: 0; background: #f5f7f9; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " ▲"; } th[aria-sort="descending"]::after { content: " ▼"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.fail td { background: #fdf3f2; } tr.fail td:nth-child(3) { color: var(--fail); font-weight: 600; }
`;

/**
 * Click (or Enter on) a heading: sort by that column, again to reverse; cells without a value stay
 * last. The report's <script>; the page (web/) allows it in its iframe by hash.
 */
export const REPORT_SCRIPT = `
"use strict";
for (const table of document.querySelectorAll("table.sortable")) {
  const heads = Array.from(table.tHead.rows[0].cells);
  heads.forEach((th, col) => {
    const sort = () => {
      const up = th.getAttribute("aria-sort") !== "ascending";
      for (const h of heads) h.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      const numeric = th.dataset.type === "number";
      const key = (tr) => {
        const td = tr.cells[col];
        if (!numeric) return td.textContent;
        return td.dataset.sort === "" ? null : Number(td.dataset.sort);
      };
      const body = table.tBodies[0];
      const rows = Array.from(body.rows).map((tr, i) => ({ tr, i, k: key(tr) }));
      rows.sort((a, b) => {
        if (a.k === null || b.k === null) return a.k === b.k ? a.i - b.i : a.k === null ? 1 : -1;
        const c = numeric ? (a.k < b.k ? -1 : a.k > b.k ? 1 : 0) : a.k.localeCompare(b.k);
        return (up ? c : -c) || a.i - b.i;
      });
      body.append(...rows.map((r) => r.tr));
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
  });
}
`;
