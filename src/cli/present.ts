/** Plain-text presentation shared by the commands: sizes and aligned tables. */
import { maxOf } from "../units.js";
export { formatBytes, snakeKeys } from "../units.js";

/** A parameter count: 4096, 1.23 M, 7.24 B. */
export function formatCount(n: number): string {
  if (n < 1e4) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} K`;
  if (n < 1e9) return `${(n / 1e6).toFixed(2)} M`;
  return `${(n / 1e9).toFixed(2)} B`;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Columns padded to their widest cell; numbers (right-aligned) are marked by `right`. */
export function table(header: string[], rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const widths = header.map((h, i) => maxOf(rows.map((r) => (r[i] ?? "").length), h.length));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** JSON for machines; Infinity and NaN (SQNR of an exact tensor, stats of empty ones) become strings. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v), 2);
}

/** A number in a table cell: about four significant digits, "inf" / "nan" spelled out. */
export function formatNumber(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return "-";
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return "0";
  const abs = Math.abs(x);
  return abs >= 1e-3 && abs < 1e5 ? String(Number(x.toPrecision(digits))) : x.toExponential(digits - 1);
}
