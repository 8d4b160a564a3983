/** `kquant quantize`: parse the flags into rules, run the pipeline, present the report. */
import { Command, InvalidArgumentError, Option } from "commander";
import { KquantError, printable, printableLines } from "../errors.js";
import { basename } from "node:path";
import { jobRulesOf, type JobRules, type ModeOptions } from "../plan/quantize-flags.js";
import type { QuantizeReport } from "../pipeline/quantize/run-quantize.js";
import { MAX_SHARD_JOBS, parseShardSpec, type ShardSpec } from "../pipeline/quantize/shard-select.js";
import { layoutNamed, LAYOUT_NAMES } from "../layouts/index.js";
import { formatBytes, formatCount, formatShape, table } from "./present.js";
import { makeParentFolders } from "../formats/live-files.js";
import { fsyncOption } from "./write-options.js";
import { DEFAULT_BACKEND, KERAS_BACKENDS, isKerasBackend, type KerasBackend } from "../quant/backend.js";
import { threadsOption } from "./threads-option.js";
import { allModes, modeFlags } from "../modes/registry.js";
import { MLX_LM_DTYPES, MLX_LM_MODES } from "../layouts/mlx-lm.js";
import type { MlxReport } from "../pipeline/quantize/mlx-run.js";

export function parseInteger(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError("not an integer.");
  return Number(value);
}

function parseShard(value: string): ShardSpec {
  try {
    return parseShardSpec(value);
  } catch {
    throw new InvalidArgumentError(`expected i/N with 1 <= i <= N <= ${MAX_SHARD_JOBS}, e.g. 1/4.`);
  }
}

function parseRange(value: string): [number, number] {
  const m = /^(-?\d+),(-?\d+)$/.exec(value.trim());
  if (!m || Number(m[1]) >= Number(m[2])) throw new InvalidArgumentError("expected MIN,MAX with MIN < MAX, e.g. -127,127.");
  return [Number(m[1]), Number(m[2])];
}

function parseEpsilon(value: string): number {
  const v = Number(value);
  if (!Number.isFinite(v) || v < 0) throw new InvalidArgumentError("expected a non-negative number.");
  return v;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * The mode flags the registered modes contribute, in registration order: `--int8`, `--int4`,
 * `--float8 [format]` (a flag some of whose modes have formats takes one, from their `formats`).
 */
function modeOptions(): Option[] {
  return modeFlags().map((flag) => {
    const modes = allModes().filter((m) => m.flag === flag);
    const formats = modes.flatMap((m) => m.formats ?? []);
    const help = modes.find((m) => m.flagHelp !== undefined)?.flagHelp ?? `${flag} quantization`;
    return formats.length > 0 ? new Option(`--${flag} [format]`, help).choices(formats) : new Option(`--${flag}`, help);
  });
}

function parseBackend(value: string): KerasBackend {
  if (!isKerasBackend(value)) throw new InvalidArgumentError(`expected one of ${KERAS_BACKENDS.join(", ")}.`);
  return value;
}

/** What commander parses: the quantization flags (as the plan takes them) plus the run's own. */
interface QuantizeCliOptions extends ModeOptions {
  recipe?: string;
  output?: string;
  force?: boolean;
  fsync?: boolean;
  dryRun?: boolean;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  allowNonfinite?: boolean;
  strict?: boolean;
  shard?: ShardSpec;
  threads?: number;
  scheme?: string;
  ignore?: string[];
  mlx?: string;
  bits?: number;
  dtype?: string;
}

export function quantizeCommand(): Command {
  const command = new Command("quantize")
    .description("quantize a checkpoint (safetensors, sharded index, .npy, .npz) to int8, packed int4 or float8")
    .argument("<input>", "model.safetensors, model.safetensors.index.json, array.npy, arrays.npz, or a model folder (config.json + weights)");
  for (const option of modeOptions()) command.addOption(option);
  return command
    .option("--axis <n>", "axis reduced to compute the scale (Keras's meaning; default -1, float8: per tensor)", parseInteger)
    .option("--per-tensor", "one scale for the whole tensor")
    .option("--pack-axis <n>", "int4: axis to pack along (default: the quantization axis)", parseInteger)
    .option("--block-size <n>", "int4: Keras's grouped asymmetric int4 with groups of N along the axis", parseInteger)
    .option("--value-range <min,max>", "integer value range (int8 default -127,127; int4 -8,7)", parseRange)
    .option("--epsilon <x>", "abs-max epsilon (default 1e-7)", parseEpsilon)
    .option("--margin <n>", "float8: scale margin, a power of two (default 0)", parseInteger)
    .option("--keras-backend <name>", `whose arithmetic the bytes reproduce: ${KERAS_BACKENDS.join(", ")}`, parseBackend, DEFAULT_BACKEND)
    .option("--include <glob>", "quantize only matching tensor names (repeatable)", collect)
    .option("--exclude <glob>", "never quantize matching tensor names (repeatable)", collect)
    .option("--recipe <file>", "JSON rules, first match wins (see README)")
    .option("-o, --output <path>", "output file, or folder for a model folder; missing parent folders are created (default: <input stem>.<mode>.safetensors beside the input; <folder>-<mode>[-<layout>])")
    .option("-f, --force", "overwrite an existing output")
    .addOption(fsyncOption())
    .option("--dry-run", "print the plan and sizes, write nothing")
    .option("--json", "print the report as JSON on stdout")
    .option("-q, --quiet", "no progress bar, no report (errors still go to stderr)")
    .option("-v, --verbose", "list every tensor in the report (default: totals by mode and why tensors were kept)")
    .option("--allow-nonfinite", "quantize tensors that hold NaN or Inf instead of stopping")
    .option("--strict", "a tensor that cannot take the mode (e.g. --block-size on a 4-D weight) fails the run instead of being kept as it is")
    .option("--shard <i/N>", "sharded input: quantize only job i's share of the N jobs' input shards, then run merge-index", parseShard)
    .option("--layout <name>", `how the output names and shapes the quantized tensors: ${LAYOUT_NAMES.join(", ")} (default kquant)`, layoutNamed)
    .addOption(threadsOption())
    .option("--scheme <name>", "MODEL_DIR: llm-compressor's model_free_ptq with this preset (W4A16, FP8_DYNAMIC, NVFP4A16, MXFP4, ...), a compressed-tensors folder (docs/llmcompressor.md)")
    .option("--ignore <entry>", "--scheme: a module model_free_ptq leaves float, by name or re:PATTERN (repeatable)", collect)
    .addOption(new Option("--mlx <mode>", "MODEL_DIR: the folder mlx_lm.convert -q --q-mode MODE writes, byte for byte (--bits, --block-size, --dtype; docs/layouts.md)").choices(MLX_LM_MODES))
    .option("--bits <n>", "--mlx: the bit width (mlx_lm's --q-bits; default per mode)", parseInteger)
    .addOption(new Option("--dtype <dtype>", "--mlx: the dtype of what stays float, scales and biases (mlx_lm's --dtype; default config.json's torch_dtype)").choices(MLX_LM_DTYPES))
    .addHelpText(
      "after",
      `
Examples:
  kquant quantize model.safetensors --int8
  kquant quantize model.safetensors --int4 --axis 0 -o model.int4.safetensors
  kquant quantize model.safetensors --int4 --block-size 128 --exclude 'lm_head.*'
  kquant quantize model.safetensors.index.json --float8 e5m2
  kquant quantize model.safetensors --recipe recipe.json --dry-run --json
  kquant quantize model.safetensors.index.json --int8 --shard 2/4 -o out/model.int8.safetensors.index.json
  kquant quantize MODEL_DIR --int4 --block-size 128 --layout compressed-tensors -o OUT_DIR
  kquant quantize MODEL_DIR --int4 --block-size 64 --layout mlx -o OUT_DIR   (see docs/layouts.md)
  kquant quantize MODEL_DIR --scheme W4A16 --ignore lm_head -o OUT_DIR
  kquant quantize MODEL_DIR --mlx affine --bits 4 --block-size 64 -o OUT_DIR   (mlx_lm.convert's bytes)`,
    )
    .action(async (input: string, opts: QuantizeCliOptions) => {
      if (opts.scheme !== undefined) return schemeAction(input, opts);
      if (opts.mlx !== undefined) return mlxAction(input, opts);
      const mlxOnly = (["bits", "dtype"] as const).filter((f) => opts[f] !== undefined);
      if (mlxOnly.length > 0) throw new KquantError({ what: `${mlxOnly.map((f) => `--${f}`).join(" ")} without --mlx`, hint: "they set mlx_lm.convert's --q-bits and --dtype for --mlx MODE" });
      if (opts.ignore !== undefined) throw new KquantError({ file: "--ignore", what: "only applies with --scheme", hint: "use --exclude GLOB with a mode flag" });
      const { rules, tag, options } = await rulesOf(opts);
      // Loaded when the command runs, so that `--version`, `--help` and the other commands do not pay for it.
      const { runQuantize } = await import("../pipeline/quantize/run-quantize.js");
      // As mkdir -p and mlx_lm.convert do; removed again if the run fails (live-files.ts).
      if (opts.output !== undefined && !opts.dryRun) await makeParentFolders(opts.output);
      const report = await runQuantize({
        input,
        ...(opts.output !== undefined ? { output: opts.output } : {}),
        rules,
        tag,
        options: { ...options, ...(opts.layout ? { layout: opts.layout.name } : {}) },
        ...(opts.layout ? { layout: opts.layout } : {}),
        force: !!opts.force,
        fsync: !!opts.fsync,
        dryRun: !!opts.dryRun,
        quiet: !!opts.quiet || !!opts.json,
        allowNonFinite: !!opts.allowNonfinite,
        strict: !!opts.strict,
        ...(opts.shard ? { shard: opts.shard } : {}),
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        onWarning: (w) => process.stderr.write(`kquant: warning: ${printable(w)}\n`),
      });
      if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else if (!opts.quiet) process.stdout.write(`${printableLines(renderReport(report, !!opts.verbose))}\n`);
    });
}

/** The flags --mlx takes besides its own: the rest belong to kquant's Keras modes. */
const MLX_FLAGS = new Set(["mlx", "bits", "blockSize", "dtype", "output", "force", "fsync", "dryRun", "json", "quiet", "verbose", "kerasBackend", "threads"]);

/** `--mlx MODE`: mlx_lm.convert's folder (pipeline/quantize/mlx-run.ts); the Keras flags do not apply. */
async function mlxAction(input: string, opts: QuantizeCliOptions): Promise<void> {
  const others = Object.keys(opts).filter((k) => !MLX_FLAGS.has(k) && (opts as unknown as Record<string, unknown>)[k] !== undefined);
  if (others.length > 0) throw new KquantError({ file: `--mlx ${opts.mlx}`, what: `does not take ${others.map((f) => `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(", ")}`, hint: "mlx_lm.convert's options are --bits, --block-size and --dtype" });
  const { runMlxQuantize } = await import("../pipeline/quantize/mlx-run.js");
  const report = await runMlxQuantize({
    input,
    mode: opts.mlx!,
    ...(opts.output !== undefined ? { output: opts.output } : {}),
    ...(opts.bits !== undefined ? { bits: opts.bits } : {}),
    ...(opts.dtype !== undefined ? { dtype: opts.dtype } : {}),
    ...(opts.blockSize !== undefined ? { groupSize: opts.blockSize } : {}),
    force: !!opts.force,
    dryRun: !!opts.dryRun,
    fsync: !!opts.fsync,
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
  });
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else if (!opts.quiet) process.stdout.write(`${printableLines(renderReport(report.report, !!opts.verbose, mlxAbout(report)))}\n`);
}

/** The line under the report's first that says what --mlx ran. */
export function mlxAbout(r: MlxReport): string {
  const q = r.quantization;
  return `MLX ${q.mode}, ${q.bits} bits, groups of ${q.group_size}, float tensors ${r.dtype ?? "in their own dtype"}, as mlx_lm.convert writes it`;
}

/** The flags --scheme takes besides its own: the rest belong to kquant's Keras modes. */
const SCHEME_FLAGS = new Set(["scheme", "ignore", "exclude", "output", "force", "fsync", "dryRun", "json", "quiet", "strict", "kerasBackend", "verbose", "threads"]);

async function schemeAction(input: string, opts: QuantizeCliOptions): Promise<void> {
  const other = Object.keys(opts).find((k) => !SCHEME_FLAGS.has(k) && (opts as unknown as Record<string, unknown>)[k] !== undefined);
  if (other !== undefined) {
    const flag = `--${other.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new KquantError({ file: flag, what: "does not apply with --scheme (the preset fixes the quantization and the compressed-tensors layout)", hint: "see docs/llmcompressor.md" });
  }
  const { runScheme } = await import("../pipeline/quantize/scheme-run.js");
  const report = await runScheme({
    input,
    scheme: opts.scheme!,
    ...(opts.output !== undefined ? { output: opts.output } : {}),
    ...(opts.ignore ? { ignore: opts.ignore } : {}),
    ...(opts.exclude ? { exclude: opts.exclude } : {}),
    strict: !!opts.strict,
    force: !!opts.force,
    dryRun: !!opts.dryRun,
    fsync: !!opts.fsync,
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
  });
  for (const w of report.warnings) process.stderr.write(`kquant: warning: ${printable(w)}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else if (!opts.quiet) process.stdout.write(`${printableLines(renderReport(report, !!opts.verbose, `llm-compressor ${report.scheme} (${report.format}), as model_free_ptq writes it`))}\n`);
}

/** The recipe file (read here, parsed by plan/recipe.ts) and the flags as the job's rules (plan/quantize-flags.ts). */
async function rulesOf(opts: QuantizeCliOptions): Promise<JobRules> {
  if (!opts.recipe) return jobRulesOf(opts);
  const fileName = basename(opts.recipe);
  // The flags' own problems (more than one mode) come before the recipe's.
  jobRulesOf(opts, { fileName, rules: [] });
  // A regular file only (a FIFO would hold the run), read whole.
  const { readRegularFile } = await import("../formats/io.js");
  const text = (await readRegularFile(opts.recipe)).toString("utf8");
  const { parseRecipe } = await import("../plan/recipe.js");
  return jobRulesOf(opts, { fileName, rules: parseRecipe(opts.recipe, text) });
}

/**
 * The report of any quantize run (kquant's modes, --scheme, --mlx) as text: what was written (or
 * would be), `about` the run (a line under the first), totals by mode, why tensors were kept; every
 * tensor with `verbose`.
 */
export function renderReport(r: QuantizeReport, verbose = false, about?: string): string {
  const s = r.summary;
  const lines: string[] = [];
  lines.push(r.dry_run ? `Dry run: would write ${r.output} (nothing written)` : `Quantized ${r.input} → ${r.output}`);
  if (about !== undefined) lines.push(about);
  lines.push(
    "",
    table(
      ["mode", "tensors", "parameters", "bits/weight", "before", "after"],
      Object.entries(s.by_mode).map(([mode, t]) => [
        mode,
        String(t.tensors),
        formatCount(t.parameters),
        t.bits_per_weight.toFixed(2),
        formatBytes(t.bytes_before),
        formatBytes(t.bytes_after),
      ]),
      new Set([1, 2, 3, 4, 5]),
    ),
  );
  const reasons = s.passthrough_reasons;
  if (reasons.length && !verbose) {
    lines.push("", `Kept as they are (${s.passthrough}):`);
    for (const { reason, tensors } of reasons) lines.push(`  ${String(tensors).padStart(4)} × ${reason}`);
  }
  if (verbose && r.quantized.length) {
    lines.push("", `Quantized (${r.quantized.length}):`);
    lines.push(
      table(
        ["tensor", "dtype", "shape", "mode", "scheme", "before", "after"],
        r.quantized.map((q) => [q.name, q.source_dtype, formatShape(q.shape), q.mode, q.scheme, formatBytes(q.bytes_before), formatBytes(q.bytes_after)]),
        new Set([5, 6]),
      ),
    );
  }
  if (verbose && r.skipped.length) {
    lines.push("", `Kept as they are (${r.skipped.length}):`);
    lines.push(
      table(
        ["tensor", "dtype", "shape", "reason", "size"],
        r.skipped.map((k) => [k.name, k.dtype, formatShape(k.shape), k.reason, formatBytes(k.bytes)]),
        new Set([4]),
      ),
    );
  }
  const ratio = r.bytes_after > 0 ? (r.bytes_before / r.bytes_after).toFixed(2) : "-";
  lines.push(
    "",
    `Total: ${s.tensors} tensors, ${formatCount(s.parameters)} parameters, ${formatBytes(r.bytes_before)} → ${formatBytes(r.bytes_after)} (${ratio}× smaller), ${s.bits_per_weight.toFixed(2)} bits/weight`,
  );
  lines.push(r.dry_run ? `Manifest: would write ${r.manifest}` : `Manifest: ${r.manifest}`);
  if (!verbose) lines.push("(--verbose lists every tensor)");
  return lines.join("\n");
}
