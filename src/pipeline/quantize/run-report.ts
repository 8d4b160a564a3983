/**
 * What a quantize run did, or would do with --dry-run: the report every kind of run gives (kquant's
 * modes, --scheme, --mlx) and `renderReport` (src/cli/quantize.ts) presents, one presenter for all.
 * Each tensor is quantized (its mode, bytes before and after) or kept (why), and the totals by mode.
 */
import { elementCountOf } from "../../formats/dtypes.js";

export interface QuantizedEntry {
  name: string;
  /** A kquant mode, an llm-compressor scheme (`W4A16`) or an MLX mode (`mlx_affine`). */
  mode: string;
  scheme: string;
  rule: string;
  source_dtype: string;
  shape: number[];
  bytes_before: number;
  bytes_after: number;
}

export interface SkippedEntry {
  name: string;
  reason: string;
  dtype: string;
  shape: number[];
  bytes: number;
  /** What it takes in the output when that differs from `bytes` (cast by --mlx, 0: dropped). */
  bytes_after?: number;
}

/** Totals for the tensors of one mode (or "passthrough"). */
export interface ModeTotals {
  tensors: number;
  /** Source elements (a packed int4 64×64 counts 4096). */
  parameters: number;
  bytes_before: number;
  bytes_after: number;
  /** Stored bits (values, scales and zero points) per source parameter. */
  bits_per_weight: number;
}

export interface QuantizeSummary extends ModeTotals {
  quantized: number;
  passthrough: number;
  /** By mode, passthrough included, in the order the modes first appear. */
  by_mode: Record<string, ModeTotals>;
  /** Why tensors were kept as they are: each reason (without the shape it names) with its count, most common first. */
  passthrough_reasons: { reason: string; tensors: number }[];
}

export interface QuantizeReport {
  input: string;
  output: string;
  manifest: string;
  /** Shard files written, for a sharded output. */
  shards?: string[];
  dry_run: boolean;
  quantized: QuantizedEntry[];
  skipped: SkippedEntry[];
  bytes_before: number;
  bytes_after: number;
  summary: QuantizeSummary;
  warnings: string[];
}

function totalsOf(rows: { shape: number[]; before: number; after: number }[]): ModeTotals {
  const parameters = rows.reduce((n, r) => n + (elementCountOf(r.shape) ?? 0), 0);
  const bytesAfter = rows.reduce((n, r) => n + r.after, 0);
  return {
    tensors: rows.length,
    parameters,
    bytes_before: rows.reduce((n, r) => n + r.before, 0),
    bytes_after: bytesAfter,
    bits_per_weight: parameters === 0 ? 0 : (bytesAfter * 8) / parameters,
  };
}

/** The report's totals: overall, by mode, and the passthrough reasons grouped. */
export function summaryOf(quantized: readonly QuantizedEntry[], skipped: readonly SkippedEntry[]): QuantizeSummary {
  const rows = [
    ...quantized.map((q) => ({ mode: q.mode as string, shape: q.shape, before: q.bytes_before, after: q.bytes_after })),
    ...skipped.map((s) => ({ mode: "passthrough", shape: s.shape, before: s.bytes, after: s.bytes_after ?? s.bytes })),
  ];
  const modes = [...new Set(rows.map((r) => r.mode))];
  const reasons = new Map<string, number>();
  for (const s of skipped) {
    // Grouped without the shape each reason names, so one cause is one line however many shapes it met.
    const reason = s.reason.replace(/,? (?:got|for) shape \[[^\]]*\]/g, "");
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  return {
    ...totalsOf(rows),
    quantized: quantized.length,
    passthrough: skipped.length,
    by_mode: Object.fromEntries(modes.map((m) => [m, totalsOf(rows.filter((r) => r.mode === m))])),
    passthrough_reasons: [...reasons].sort((a, b) => b[1] - a[1]).map(([reason, tensors]) => ({ reason, tensors })),
  };
}

/** What makes a report: where it goes, and each tensor quantized or kept. */
export interface RunReportParts {
  input: string;
  output: string;
  manifest: string;
  shards?: string[];
  dryRun: boolean;
  quantized: QuantizedEntry[];
  skipped: SkippedEntry[];
  warnings?: string[];
}

/** The report of a run: its tensors, their bytes before and after, and the summary. */
export function runReport(p: RunReportParts): QuantizeReport {
  return {
    input: p.input,
    output: p.output,
    manifest: p.manifest,
    ...(p.shards ? { shards: p.shards } : {}),
    dry_run: p.dryRun,
    quantized: p.quantized,
    skipped: p.skipped,
    bytes_before: p.quantized.reduce((n, q) => n + q.bytes_before, 0) + p.skipped.reduce((n, s) => n + s.bytes, 0),
    bytes_after: p.quantized.reduce((n, q) => n + q.bytes_after, 0) + p.skipped.reduce((n, s) => n + (s.bytes_after ?? s.bytes), 0),
    summary: summaryOf(p.quantized, p.skipped),
    warnings: p.warnings ?? [],
  };
}
