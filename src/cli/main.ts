/**
 * The `kquant` command. Exit codes: 0 done, 1 a check failed (verify thresholds, mismatches),
 * 2 bad usage or bad input. Errors are one line on stderr.
 */
import { Command, CommanderError } from "commander";
import { KquantError } from "../errors.js";
import { KERAS_VERSION, VERSION } from "../version.js";
import { dequantizeCommand } from "./dequantize.js";
import { inspectCommand } from "./inspect.js";
import { mergeIndexCommand } from "./merge-index.js";
import { quantizeCommand } from "./quantize.js";
import { verifyCommand } from "./verify.js";

// kquant prints no color or styling of its own, so NO_COLOR needs no switch: output is plain
// text everywhere, and the progress bar (cursor moves only) appears only on a terminal.
const TOP_LEVEL_HELP = `
Exit status: 0 done, 1 a check failed (verify), 2 bad usage or bad input.
Run "kquant <command> --help" for each command's options and examples.

Examples:
  kquant inspect model.safetensors
  kquant quantize model.safetensors --int8
  kquant quantize model.safetensors --int4 --block-size 128 -o model.int4.safetensors
  kquant verify model.int4.safetensors --against model.safetensors --min-cosine 0.99
  kquant dequantize model.int4.safetensors -o model.f32.safetensors`;

export function program(): Command {
  const cmd = new Command("kquant")
    .description("Quantize model weight files to int8, packed int4 and float8, bit-exact with Keras 3")
    .version(`kquant ${VERSION} (Keras ${KERAS_VERSION})`, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (str, write) => write(str) })
    .addHelpText("after", TOP_LEVEL_HELP);
  cmd.addCommand(quantizeCommand());
  cmd.addCommand(inspectCommand());
  cmd.addCommand(verifyCommand());
  cmd.addCommand(dequantizeCommand());
  cmd.addCommand(mergeIndexCommand());
  for (const sub of cmd.commands) sub.exitOverride();
  cmd.exitOverride();
  return cmd;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every other parse error is bad usage.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof KquantError) {
      process.stderr.write(`kquant: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`kquant: internal error: ${(err as Error).stack ?? String(err)}\n`);
    return 70;
  }
}
