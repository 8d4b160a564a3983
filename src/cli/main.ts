/**
 * The `kquant` command. Exit codes: 0 done, 1 a check failed (verify thresholds, mismatches),
 * 2 bad usage or bad input. Errors are one line on stderr.
 */
import { Command, CommanderError } from "commander";
import { KquantError } from "../errors.js";
import { VERSION } from "../version.js";
import { dequantizeCommand } from "./dequantize.js";
import { inspectCommand } from "./inspect.js";
import { quantizeCommand } from "./quantize.js";
import { verifyCommand } from "./verify.js";

export function program(): Command {
  const cmd = new Command("kquant")
    .description("Quantize model weight files to int8, packed int4 and float8, bit-exact with Keras 3")
    .version(VERSION, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (str, write) => write(str) });
  cmd.addCommand(quantizeCommand());
  cmd.addCommand(inspectCommand());
  cmd.addCommand(verifyCommand());
  cmd.addCommand(dequantizeCommand());
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
