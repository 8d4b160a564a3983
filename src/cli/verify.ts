/** `kquant verify`: integrity of a kquant output, and its error against the original as a gate. */
import { Command, InvalidArgumentError } from "commander";
import { KquantError } from "../errors.js";
import { threadsOption } from "./threads-option.js";
import type { TensorVerdict, VerifyReport } from "../pipeline/read-back/verify.js";
import { formatNumber, jsonText } from "./present.js";

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
  json?: boolean;
  threads?: number;
}

export function verifyCommand(): Command {
  return new Command("verify")
    .description("check a kquant output: structure, the hash of every tensor, and (with --against) the error against the original")
    .argument("<quantized>", "a kquant output (.safetensors or .safetensors.index.json)")
    .option("--against <original>", "the checkpoint it was quantized from: check source hashes, measure the error")
    .option("--min-sqnr <dB>", "fail tensors whose SQNR is below this (needs --against)", parseNumber)
    .option("--min-cosine <x>", "fail tensors whose cosine similarity is below this (needs --against)", parseNumber)
    .option("--max-abs-error <x>", "fail tensors whose max abs error is above this (needs --against)", parseNumber)
    .option("--filter <glob>", "only tensors whose name matches (repeatable)", collect)
    .option("--json", "print the report as JSON on stdout")
    .addOption(threadsOption())
    .addHelpText(
      "after",
      `
Exit status: 0 all checks pass, 1 a check failed (each failing tensor is named), 2 bad usage or unreadable input.

Examples:
  kquant verify model.int8.safetensors
  kquant verify model.int4.safetensors --against model.safetensors --min-cosine 0.99`,
    )
    .action(async (file: string, opts: VerifyCliOptions) => {
      const stream = !opts.json;
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
          ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        },
        stream ? (v) => process.stdout.write(`${verdictLine(v)}\n`) : undefined,
      );
      process.stdout.write(`${opts.json ? jsonText(report) : summaryText(report)}\n`);
      if (!report.ok) throw new KquantError(failureMessage(report), 1);
    });
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

export function summaryText(r: VerifyReport): string {
  const s = r.summary;
  const lines = r.file_problems.map((p) => `FAIL ${p}`);
  lines.push(
    `${r.ok ? "OK" : "FAILED"}: ${s.tensors - s.failed} of ${s.tensors} tensors pass (${s.quantized} quantized, ${s.passthrough} kept), ${s.hashes_checked} hashes checked`,
  );
  if (r.against !== null && s.min_sqnr_db !== null) {
    lines.push(
      `Against ${r.against}: SQNR min ${formatNumber(s.min_sqnr_db)} dB, mean ${formatNumber(s.mean_sqnr_db)} dB; cosine min ${formatNumber(s.min_cosine, 6)}; max abs error ${formatNumber(s.max_abs_error)}`,
    );
  }
  return lines.join("\n");
}

export function failureMessage(r: VerifyReport): string {
  const failing = r.tensors.filter((v) => !v.ok);
  const named = failing.map((v) => `"${v.name}" (${[...v.problems, ...v.gate_failures].join("; ")})`);
  const parts = [...r.file_problems, ...named];
  const shown = parts.slice(0, 10).join(", ");
  const more = parts.length > 10 ? ` and ${parts.length - 10} more` : "";
  return `${r.file}: verify failed for ${failing.length} tensor(s)${r.file_problems.length ? ` and ${r.file_problems.length} file problem(s)` : ""}: ${shown}${more}`;
}
