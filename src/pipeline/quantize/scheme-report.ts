/**
 * The report of a --scheme run (or of its --dry-run): each tensor of the checkpoint as the
 * converter sees it (fused experts split) quantized with the tensors the scheme stores for it
 * (modes/llmc-schemes.ts `planned`), or kept float and why, in the report every quantize
 * run gives (run-report.ts), so one presenter shows them all.
 */
import { join } from "node:path";
import type { TensorInfo } from "../../formats/types.js";
import { byteLengthOf } from "../../formats/dtypes.js";
import type { SchemeDescriptor } from "../../modes/llmc-schemes.js";
import { llmcIgnoreMatcher, splitTensorName, type LlmcAction } from "../../plan/llmc-targets.js";
import { runReport, type QuantizedEntry, type QuantizeReport, type SkippedEntry } from "./run-report.js";

/** A weight the reference would quantize that stays float, and why. */
export interface SchemeKept {
  name: string;
  reason: string;
}

/** What a --scheme run did (or would do, `dry_run`): the quantize report, and the scheme's own. */
export interface SchemeReport extends QuantizeReport {
  scheme: string;
  format: string;
  /** The ignore list written into quantization_config (the given one, then kept weights' modules). */
  ignore: string[];
  /** The weights the format cannot hold, kept float (also in `skipped`, with the same reason). */
  kept: SchemeKept[];
}

/** Why model_free_ptq copies tensor `name` as it is. */
function copyReason(name: string, given: (module: string) => boolean, kept: ReadonlyMap<string, string>): string {
  const why = kept.get(name);
  if (why !== undefined) return why;
  const { module, param } = splitTensorName(name);
  if (param !== "weight") return "not a weight (model_free_ptq quantizes `weight` parameters only)";
  if (module.endsWith("norm")) return "a norm (model_free_ptq never quantizes norms)";
  return given(module) ? "ignored (--ignore)" : "ignored (--exclude)";
}

/** The report of a --scheme run over `tensors` (in order) with `actions`; `shards` are the output's weight files. */
export function schemeRunReport(p: {
  input: string;
  output: string;
  manifest: string;
  dryRun: boolean;
  scheme: SchemeDescriptor;
  format: string;
  givenIgnore: readonly string[];
  ignore: string[];
  kept: SchemeKept[];
  tensors: readonly TensorInfo[];
  actions: ReadonlyMap<string, LlmcAction>;
  shards: readonly string[];
}): SchemeReport {
  const given = llmcIgnoreMatcher(p.givenIgnore);
  const kept = new Map(p.kept.map((k) => [k.name, k.reason]));
  const quantized: QuantizedEntry[] = [];
  const skipped: SkippedEntry[] = [];
  for (const t of p.tensors) {
    if (p.actions.get(t.name)?.kind !== "quantize") {
      skipped.push({ name: t.name, reason: copyReason(t.name, given, kept), dtype: t.dtype, shape: t.shape, bytes: t.byteLength });
      continue;
    }
    const [rows, cols] = t.shape as [number, number];
    quantized.push({
      name: t.name,
      mode: p.scheme.name,
      scheme: p.scheme.describe,
      rule: `--scheme ${p.scheme.name}`,
      source_dtype: t.dtype,
      shape: t.shape,
      bytes_before: t.byteLength,
      bytes_after: p.scheme.planned("", t.dtype, rows, cols).reduce((n, s) => n + byteLengthOf(s.dtype, s.shape), 0),
    });
  }
  const report = runReport({
    input: p.input,
    output: p.output,
    manifest: p.manifest,
    shards: p.shards.map((s) => join(p.output, s)),
    dryRun: p.dryRun,
    quantized,
    skipped,
    warnings: p.kept.map((k) => `${k.name} stays float: ${k.reason}`),
  });
  return { ...report, scheme: p.scheme.name, format: p.format, ignore: p.ignore, kept: p.kept };
}
