/**
 * The report's charts as inline SVG strings: no script, no external resource, fixed coordinates
 * (rounded to 0.1 px) so that the same report always gives the same bytes. Colours come from the
 * page's stylesheet through class names.
 */
import { formatNumber } from "../cli/present.js";
import type { ErrorHistogram } from "../quant/error-histogram.js";
import { escapeHtml } from "./escape.js";
import { maxOf, minOf } from "../units.js";

/** One bar of the SQNR chart: a measured tensor. */
export interface SqnrBar {
  name: string;
  /** dB; Infinity for an exact tensor, −Infinity for an all-zero original. */
  sqnrDb: number;
  /** Passed every check and threshold. */
  ok: boolean;
}

const px = (x: number) => (Math.round(x * 10) / 10).toString();

/** 1, 2 or 5 × 10^k: the smallest such step ≥ `rough`. */
function niceStep(rough: number): number {
  const power = 10 ** Math.floor(Math.log10(rough));
  const m = rough / power;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
}

const LABEL_CHARS = 52;
/** Long names keep their end (the layer and role), which tells tensors apart. */
const shortName = (name: string) => (name.length <= LABEL_CHARS ? name : `…${name.slice(name.length - LABEL_CHARS + 1)}`);

/**
 * A horizontal bar per tensor, in the order given (the caller puts the worst first), the bar's length
 * its SQNR in dB on a shared axis from min(0, lowest) to the highest finite value; an exact tensor
 * (infinite SQNR) fills the axis, marked "inf". `minSqnr`, when set, is drawn as a dashed line.
 * Each bar is a `rect.bar` with `data-name` and `data-sqnr`.
 */
export function sqnrChart(bars: readonly SqnrBar[], minSqnr?: number): string {
  const width = 960;
  const labelWidth = 360;
  const valueWidth = 84;
  const row = 18;
  const top = 26;
  const plotLeft = labelWidth;
  const plotWidth = width - labelWidth - valueWidth;
  const height = top + bars.length * row + 8;

  const finite = bars.map((b) => b.sqnrDb).filter(Number.isFinite);
  if (minSqnr !== undefined) finite.push(minSqnr);
  const lowest = minOf(finite, 0);
  const highest = maxOf(finite, lowest + 1);
  const step = niceStep((highest - lowest) / 6);
  const lo = Math.floor(lowest / step) * step;
  const hi = Math.ceil(highest / step) * step;
  const x = (v: number) => plotLeft + ((Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * plotWidth;

  const parts: string[] = [];
  for (let t = lo; t <= hi + step / 2; t += step) {
    const tx = px(x(t));
    parts.push(`<line class="grid" x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${height - 8}"/>`);
    parts.push(`<text class="tick" x="${tx}" y="${top - 10}" text-anchor="middle">${escapeHtml(formatNumber(t))}</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * row;
    const x0 = x(Math.max(lo, 0));
    const x1 = x(b.sqnrDb === Infinity ? hi : b.sqnrDb);
    const [left, right] = x1 >= x0 ? [x0, x1] : [x1, x0];
    const kind = `bar ${b.ok ? "ok" : "fail"}${b.sqnrDb === Infinity ? " exact" : ""}`;
    const name = escapeHtml(b.name);
    const value = b.sqnrDb === Infinity ? "inf (exact)" : `${formatNumber(b.sqnrDb)} dB`;
    parts.push(
      `<g><title>${name}: SQNR ${escapeHtml(value)}</title>` +
        `<text class="label" x="${labelWidth - 8}" y="${px(y + 12)}" text-anchor="end">${escapeHtml(shortName(b.name))}</text>` +
        `<rect class="${kind}" data-name="${name}" data-sqnr="${String(b.sqnrDb)}" x="${px(left)}" y="${px(y + 3)}" width="${px(right - left)}" height="12"/>` +
        `<text class="value" x="${px(Math.max(left, right) + 6)}" y="${px(y + 12)}">${escapeHtml(value)}</text></g>`,
    );
  });
  if (minSqnr !== undefined) {
    const tx = px(x(minSqnr));
    parts.push(`<line class="threshold" x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${height - 8}"><title>--min-sqnr ${escapeHtml(formatNumber(minSqnr))} dB</title></line>`);
  }
  return (
    `<svg class="chart sqnr" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="SQNR per tensor in dB, worst first">` +
    parts.join("") +
    `</svg>`
  );
}

/**
 * The bins of one tensor's error histogram as bars (`rect.hist-bar`, each with `data-count`), the
 * x axis from −limit to +limit with zero marked, the y axis linear from 0 to the fullest bin.
 */
export function histogramChart(h: ErrorHistogram, label: string): string {
  const width = 440;
  const height = 190;
  const left = 58;
  const right = 12;
  const top = 10;
  const bottom = 34;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const most = maxOf(h.counts, 1);
  const binWidth = plotWidth / h.counts.length;
  const base = top + plotHeight;

  const parts: string[] = [];
  h.counts.forEach((count, i) => {
    const barHeight = (count / most) * plotHeight;
    const from = -h.limit + (2 * h.limit * i) / h.counts.length;
    const to = -h.limit + (2 * h.limit * (i + 1)) / h.counts.length;
    parts.push(
      `<rect class="hist-bar" data-count="${count}" x="${px(left + i * binWidth + 0.5)}" y="${px(base - barHeight)}" width="${px(Math.max(0.5, binWidth - 1))}" height="${px(barHeight)}">` +
        `<title>${escapeHtml(`[${formatNumber(from)}, ${formatNumber(to)}): ${count}`)}</title></rect>`,
    );
  });
  const zero = px(left + plotWidth / 2);
  parts.push(`<line class="axis" x1="${left}" y1="${px(base)}" x2="${left + plotWidth}" y2="${px(base)}"/>`);
  parts.push(`<line class="axis" x1="${left}" y1="${top}" x2="${left}" y2="${px(base)}"/>`);
  parts.push(`<line class="zero" x1="${zero}" y1="${top}" x2="${zero}" y2="${px(base)}"/>`);
  parts.push(`<text class="tick" x="${left}" y="${px(base + 14)}" text-anchor="start">${escapeHtml(formatNumber(-h.limit))}</text>`);
  parts.push(`<text class="tick" x="${zero}" y="${px(base + 14)}" text-anchor="middle">0</text>`);
  parts.push(`<text class="tick" x="${left + plotWidth}" y="${px(base + 14)}" text-anchor="end">${escapeHtml(formatNumber(h.limit))}</text>`);
  parts.push(`<text class="axis-title" x="${zero}" y="${px(base + 28)}" text-anchor="middle">dequantized − original</text>`);
  parts.push(`<text class="tick" x="${left - 6}" y="${top + 8}" text-anchor="end">${most}</text>`);
  parts.push(`<text class="tick" x="${left - 6}" y="${px(base)}" text-anchor="end">0</text>`);
  return (
    `<svg class="chart histogram" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(`error histogram of ${label}`)}">` +
    parts.join("") +
    `</svg>`
  );
}
