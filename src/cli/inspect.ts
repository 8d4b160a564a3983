/** `kquant inspect`: the tensors of a weight file, a kquant output's manifest, optional value statistics. */
import { printableLines } from "../errors.js";
import { maxOf } from "../units.js";
import { Command } from "commander";
import type { InspectReport } from "../pipeline/read-back/inspect.js";
import { formatBytes, formatNumber, formatShape, jsonText, table } from "./present.js";
import { parseInteger } from "./quantize.js";
import { threadsOption } from "./threads-option.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface InspectCliOptions {
  threads?: number;
  stats?: boolean;
  json?: boolean;
  filter?: string[];
  bins?: number;
}

export function inspectCommand(): Command {
  return new Command("inspect")
    .description("list the tensors of a .safetensors (or sharded index), .npy or .npz file; summarise a kquant output")
    .argument("<file>", "model.safetensors, model.safetensors.index.json, array.npy, arrays.npz, or a model folder (kquant, MLX, --scheme)")
    .option("--stats", "min, max, mean, std, abs-max, zeros, NaN, Inf and a histogram of each floating tensor (reads the data)")
    .option("--filter <glob>", "only tensors whose name matches (repeatable; * matches dots too)", collect)
    .option("--bins <n>", "histogram bins for --stats", parseInteger, 10)
    .option("--json", "print the report as JSON on stdout")
    .addOption(threadsOption())
    .addHelpText(
      "after",
      `
Examples:
  kquant inspect model.safetensors
  kquant inspect model.int4.safetensors --filter '*.mlp.*'
  kquant inspect model.safetensors --stats --json`,
    )
    .action(async (file: string, opts: InspectCliOptions) => {
      // Loaded when the command runs, so that `--version`, `--help` and the other commands do not pay for it.
      const { runInspect } = await import("../pipeline/read-back/inspect.js");
      const report = await runInspect(file, {
        stats: !!opts.stats,
        ...(opts.filter ? { filter: opts.filter } : {}),
        bins: Math.max(1, opts.bins ?? 10),
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
      });
      process.stdout.write(`${opts.json ? jsonText(report) : printableLines(renderInspect(report))}\n`);
    });
}

export function renderInspect(r: InspectReport): string {
  const lines: string[] = [];
  const shards = r.files.length > 1 ? `, ${r.files.length} shards` : "";
  lines.push(`${r.file} (${r.format}${shards})`);
  const k = r.kquant;
  if (k) {
    const modes = Object.entries(k.modes)
      .map(([m, n]) => `${n} ${m}`)
      .join(", ");
    lines.push(`kquant ${k.kquant_version} output of ${k.source_file}: ${modes}`);
    lines.push("");
    lines.push(
      table(
        ["tensor", "mode", "source", "shape", "stored", "scale", "orig_len", "bits/w", "size"],
        k.tensors.map((t) => [
          t.name,
          t.mode,
          t.source_dtype,
          formatShape(t.shape),
          `${t.stored_dtype} ${formatShape(t.stored_shape)}`,
          t.scale_shape ? formatShape(t.scale_shape) + (t.zero_shape ? " +zero" : "") : "-",
          t.orig_len === null ? "-" : String(t.orig_len),
          t.bits_per_weight.toFixed(2),
          formatBytes(t.stored_bytes),
        ]),
        new Set([6, 7, 8]),
      ),
    );
  } else if (r.mlx) {
    const q = r.mlx.quantization;
    lines.push(`MLX ${q.mode} folder: ${q.bits} bits, groups of ${q.group_size}, ${r.mlx.tensors.length} quantized weights, ${r.mlx.bits_per_weight.toFixed(2)} bits/weight`);
    lines.push("", quantizedTable(r, new Map(r.mlx.tensors.map((t) => [t.name, t]))));
  } else if (r.scheme) {
    const s = r.scheme;
    lines.push(`llm-compressor ${s.scheme} folder (${s.format}: ${s.describe}): ${s.tensors.length} quantized weights, ${s.bits_per_weight.toFixed(2)} bits/weight stored`);
    if (s.ignore.length > 0) lines.push(`Kept float (ignore): ${s.ignore.join(", ")}`);
    lines.push("", quantizedTable(r, new Map(s.tensors.map((t) => [t.codes, t]))));
  } else {
    lines.push("");
    lines.push(
      table(
        ["tensor", "dtype", "shape", "size"],
        r.tensors.map((t) => [t.name, t.dtype, formatShape(t.shape), formatBytes(t.bytes)]),
        new Set([3]),
      ),
    );
  }
  lines.push("");
  lines.push(
    `Total: ${r.totals.tensors} stored tensors, ${r.totals.parameters.toLocaleString("en-US")} parameters, ${formatBytes(r.totals.bytes)}`,
  );
  if (k) {
    lines.push(
      `Source ${formatBytes(k.source_bytes)} → stored ${formatBytes(k.stored_bytes)}: ${k.compression_ratio.toFixed(2)}× smaller (whole file)`,
    );
    const opts = Object.entries(k.options)
      .map(([key, v]) => `${key}=${JSON.stringify(v)}`)
      .join(" ");
    if (opts) lines.push(`Options: ${opts}`);
  }
  if (r.metadata && Object.keys(r.metadata).length > 0) {
    lines.push(`Metadata: ${Object.entries(r.metadata).map(([key, v]) => `${key}=${v.length > 60 ? `${v.slice(0, 57)}...` : v}`).join(", ")}`);
  }
  const withStats = r.tensors.filter((t) => t.stats);
  if (withStats.length > 0) {
    const float8 = withStats.some((t) => t.dtype.startsWith("F8"));
    lines.push("", float8 ? "Statistics (float8 values as decoded codes, before the scale):" : "Statistics:");
    lines.push(
      table(
        ["tensor", "min", "max", "mean", "std", "abs-max", "zeros", "nan", "inf", "histogram (min → max)"],
        withStats.map((t) => {
          const s = t.stats!;
          return [
            t.name,
            formatNumber(s.min),
            formatNumber(s.max),
            formatNumber(s.mean),
            formatNumber(s.std),
            formatNumber(s.abs_max),
            String(s.zeros),
            String(s.nan),
            String(s.inf),
            `|${sparkline(s.histogram.counts)}|`,
          ];
        }),
        new Set([1, 2, 3, 4, 5, 6, 7, 8]),
      ),
    );
  }
  return lines.join("\n");
}

/** The stored tensors of a folder whose config describes its quantization; a weight's codes tensor shows its float shape and bits per weight. */
function quantizedTable(r: InspectReport, byCodes: ReadonlyMap<string, { shape: number[]; bits_per_weight: number }>): string {
  return table(
    ["tensor", "dtype", "shape", "weights", "bits/w", "size"],
    r.tensors.map((t) => {
      const m = byCodes.get(t.name);
      return [t.name, t.dtype, formatShape(t.shape), m ? formatShape(m.shape) : "-", m ? m.bits_per_weight.toFixed(2) : "-", formatBytes(t.bytes)];
    }),
    new Set([4, 5]),
  );
}

const BARS = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

/** One character per bin, the tallest bin a full block; empty bins a space. */
function sparkline(counts: readonly number[]): string {
  const top = maxOf(counts, 0);
  if (top === 0) return " ".repeat(counts.length);
  return counts.map((c) => (c === 0 ? " " : BARS[Math.min(BARS.length - 1, Math.floor((c / top) * BARS.length - 1e-9))]!)).join("");
}
