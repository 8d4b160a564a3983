/** `kquant verify`: integrity of a kquant output, and its error against the original as a gate. */
import { Command, InvalidArgumentError } from "commander";
import { KquantError, printableLines } from "../errors.js";
import { writeFileAtomic } from "../formats/atomic.js";
import { checkOutputs } from "../pipeline/quantize/outputs.js";
import { threadsOption } from "./threads-option.js";
import type { TensorVerdict, VerifyReport } from "../pipeline/read-back/verify.js";
import { HISTOGRAM_BINS } from "../quant/error-histogram.js";
import { defaultFloorText } from "../pipeline/read-back/floor.js";
import { verifyStatusLine } from "../report/status.js";
import { formatNumber, jsonText, snakeKeys } from "./present.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];

function parseNumber(value: string): number {
  const v = Number(value);
  if (value.trim() === "" || !Number.isFinite(v)) throw new InvalidArgumentError("expected a number.");
  return v;
}

interface VerifyCliOptions {
  against?: string;
  minSqnr?: number;
  minCosine?: number;
  maxAbsError?: number;
  filter?: string[];
  exact?: boolean;
  json?: boolean;
  html?: string;
  force?: boolean;
  threads?: number;
}

export function verifyCommand(): Command {
  return new Command("verify")
    .description("check a kquant output: structure, the hash of every tensor, and (with --against) the error against the original")
    .argument("<quantized>", "a kquant output (.safetensors or .safetensors.index.json), or an MLX or --scheme (llm-compressor) model folder")
    .option("--against <original>", "the checkpoint it was quantized from: check source hashes, measure the error")
    .option("--min-sqnr <dB>", "fail tensors whose SQNR is below this (needs --against)", parseNumber)
    .option("--min-cosine <x>", "fail tensors whose cosine similarity is below this (needs --against)", parseNumber)
    .option("--max-abs-error <x>", "fail tensors whose max abs error is above this (needs --against)", parseNumber)
    .option("--exact", "with --against: re-derive every quantized tensor's stored bytes from the original with the manifest's options (a --scheme or --mlx folder: its config.json's) and fail any byte that differs")
    .option("--filter <glob>", "only tensors whose name matches (repeatable)", collect)
    .option("--json", "print the report as JSON on stdout")
    .option("--html <file>", "also write the report as one self-contained HTML page (table, SQNR chart, error histograms)")
    .option("-f, --force", "overwrite an existing --html file")
    .addOption(threadsOption())
    .addHelpText(
      "after",
      `
With --against and no threshold flag, every quantized tensor must reach a default SQNR floor:
${defaultFloorText()}; a --scheme folder's weights, their preset's (docs/llmcompressor.md). Any threshold flag replaces it.

Exit status: 0 all checks pass, 1 a check failed (each failing tensor is named), 2 bad usage or unreadable input.

Examples:
  kquant verify model.int8.safetensors
  kquant verify model.int4.safetensors --against model.safetensors --min-cosine 0.99
  kquant verify model.int4.safetensors --against model.safetensors --html report.html`,
    )
    .action(async (file: string, opts: VerifyCliOptions) => {
      const stream = !opts.json;
      const inputs = opts.against !== undefined ? [file, opts.against] : [file];
      if (opts.html !== undefined) await checkOutputs([opts.html], inputs, !!opts.force);
      // Loaded when the command runs, so that `--version`, `--help` and the other commands do not pay for it.
      const { runVerify } = await import("../pipeline/read-back/verify.js");
      const report = await runVerify(
        file,
        {
          ...(opts.against !== undefined ? { against: opts.against } : {}),
          ...(opts.minSqnr !== undefined ? { minSqnr: opts.minSqnr } : {}),
          ...(opts.minCosine !== undefined ? { minCosine: opts.minCosine } : {}),
          ...(opts.maxAbsError !== undefined ? { maxAbsError: opts.maxAbsError } : {}),
          ...(opts.filter ? { filter: opts.filter } : {}),
          ...(opts.exact ? { exact: true } : {}),
          ...(opts.html !== undefined ? { histogramBins: HISTOGRAM_BINS } : {}),
          ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        },
        stream ? (v) => process.stdout.write(`${printableLines(verdictLine(v))}\n`) : undefined,
      );
      // Written whatever the verdict: a failing run is when the page is most wanted.
      if (opts.html !== undefined) {
        const { renderVerifyHtml } = await import("../report/html.js");
        await writeFileAtomic(opts.html, renderVerifyHtml(report));
      }
      process.stdout.write(`${opts.json ? jsonText(jsonReport(report)) : printableLines(summaryText(report))}\n`);
      if (opts.html !== undefined && !opts.json) process.stdout.write(`HTML report: ${opts.html}\n`);
      if (!report.ok) throw failureError(report);
    });
}

/** The report as --json prints it: the thresholds' and metrics' keys in snake_case like the rest. */
export function jsonReport(r: VerifyReport): unknown {
  return {
    ...r,
    thresholds: snakeKeys(r.thresholds),
    tensors: r.tensors.map((v) => (v.metrics ? { ...v, metrics: snakeKeys(v.metrics) } : v)),
  };
}

export function verdictLine(v: TensorVerdict): string {
  const status = v.ok ? "ok  " : "FAIL";
  const m = v.metrics;
  const metrics = m
    ? `  SQNR ${formatNumber(m.sqnrDb)} dB  cos ${m.cosine.toFixed(6)}  max|err| ${formatNumber(m.maxAbsError)}  RMSE ${formatNumber(m.rmse)}`
    : "";
  const why = [...v.problems, ...v.gate_failures];
  return `${status} ${v.name} (${v.mode})${metrics}${why.length ? `\n       ${why.join("\n       ")}` : ""}`;
}

/** Tensors the summary names as the worst by error. */
const WORST_SHOWN = 3;

export function summaryText(r: VerifyReport): string {
  const s = r.summary;
  const lines = r.file_problems.map((p) => `FAIL ${p}`);
  lines.push(verifyStatusLine(r));
  if (r.against !== null && s.min_sqnr_db !== null) {
    lines.push(
      `Against ${r.against}: SQNR min ${formatNumber(s.min_sqnr_db)} dB, mean ${formatNumber(s.mean_sqnr_db)} dB; cosine min ${formatNumber(s.min_cosine, 6)}; max abs error ${formatNumber(s.max_abs_error)}`,
    );
    const worst = r.tensors
      .flatMap((v) => (v.metrics ? [{ name: v.name, sqnr: v.metrics.sqnrDb }] : []))
      .sort((a, b) => a.sqnr - b.sqnr)
      .slice(0, WORST_SHOWN);
    lines.push(`Worst by SQNR: ${worst.map((w) => `${w.name} ${formatNumber(w.sqnr)} dB`).join(", ")}`);
  }
  return lines.join("\n");
}

/**
 * The one line a failed verify ends with (exit 1): the counts and the first failing tensor. The
 * problems themselves are in the report (a FAIL line per tensor, or the JSON), not repeated here.
 */
export function failureError(r: VerifyReport): KquantError {
  const failing = r.tensors.filter((v) => !v.ok);
  const first = r.file_problems.length === 0 ? failing[0] : undefined;
  return new KquantError({
    file: r.file,
    ...(first ? { tensor: first.name } : {}),
    what: `verify failed for ${failing.length} tensor(s)${r.file_problems.length ? ` and ${r.file_problems.length} file problem(s)` : ""}`,
    hint: "the report lists each problem",
    exitCode: 1,
  });
}
