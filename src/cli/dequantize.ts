/** `kquant dequantize`: a kquant output back to float tensors. */
import { makeParentFolders } from "../formats/live-files.js";
import { printableLines } from "../errors.js";
import { Command, Option } from "commander";
import type { DequantizeReport } from "../pipeline/read-back/dequantize.js";
import type { FloatOut } from "../pipeline/read-back/record-values.js";
import { formatBytes, jsonText } from "./present.js";
import { fsyncOption } from "./write-options.js";
import { threadsOption } from "./threads-option.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface DequantizeCliOptions {
  output: string;
  dtype?: FloatOut;
  force?: boolean;
  fsync?: boolean;
  threads?: number;
  filter?: string[];
  json?: boolean;
  quiet?: boolean;
}

export function dequantizeCommand(): Command {
  return new Command("dequantize")
    .description("write a kquant output back as float tensors (.safetensors or .npz, chosen by the output's extension), or a quantized model folder as a float model folder")
    .argument("<quantized>", "a kquant output (.safetensors, .safetensors.index.json, or a model folder: kquant's, MLX's, --scheme's)")
    .requiredOption("-o, --output <path>", "output file: *.safetensors or *.npz; for a model folder, a folder (missing parent folders are created)")
    .addOption(new Option("--dtype <dtype>", "float dtype of dequantized tensors (default: f32 in a file, each tensor's source dtype in a folder)").choices(["f32", "f16", "bf16"]))
    .option("--filter <glob>", "only tensors whose name matches (repeatable)", collect)
    .option("-f, --force", "overwrite an existing output")
    .addOption(fsyncOption())
    .option("--json", "print the report as JSON on stdout")
    .option("-q, --quiet", "print nothing on success")
    .addOption(threadsOption())
    .addHelpText(
      "after",
      `
Passthrough tensors are copied unchanged; scale and zero-point tensors are consumed. Tensors keep
their original names and shapes.

Examples:
  kquant dequantize model.int8.safetensors -o model.dequantized.safetensors
  kquant dequantize model.int4.safetensors -o weights.npz --dtype f16
  kquant dequantize MODEL_DIR-int4-g64-mlx -o MODEL_DIR-float   (a folder transformers and mlx_lm load)`,
    )
    .action(async (file: string, opts: DequantizeCliOptions) => {
      // Loaded when the command runs, so that `--version`, `--help` and the other commands do not pay for it.
      const { runDequantize } = await import("../pipeline/read-back/dequantize.js");
      await makeParentFolders(opts.output);
      const report = await runDequantize({
        input: file,
        output: opts.output,
        ...(opts.dtype !== undefined ? { dtype: opts.dtype } : {}),
        force: !!opts.force,
        fsync: !!opts.fsync,
        ...(opts.filter ? { filter: opts.filter } : {}),
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
      });
      if (opts.json) process.stdout.write(`${jsonText(report)}\n`);
      else if (!opts.quiet) process.stdout.write(`${printableLines(renderDequantize(report))}\n`);
    });
}

export function renderDequantize(r: DequantizeReport): string {
  return (
    `Dequantized ${r.input} → ${r.output}: ${r.dequantized.length} tensor(s) to ${r.dtype}, ` +
    `${r.passthrough.length} kept as they were, ${formatBytes(r.bytes_written)}`
  );
}
