/**
 * The `kquant` command. Exit codes: 0 done, 1 a check failed (verify thresholds, mismatches),
 * 2 bad usage or bad input, 70 an internal error, 74 an I/O fault (disk full, read error, a file or
 * folder changed or removed under kquant), 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP. Errors are
 * one line on stderr; a command that fails or is stopped leaves none of its outputs behind.
 */
import { Command, CommanderError } from "commander";
import { KquantError } from "../errors.js";
import { beginOutputs } from "../formats/live-files.js";
import { KERAS_VERSION, VERSION } from "../version.js";
import { dequantizeCommand } from "./dequantize.js";
import { inspectCommand } from "./inspect.js";
import { mergeIndexCommand } from "./merge-index.js";
import { quantizeCommand } from "./quantize.js";
import { handleInterrupts } from "./signals.js";
import { verifyCommand } from "./verify.js";
import { webCommand } from "./web.js";

// kquant prints no color or styling of its own, so NO_COLOR needs no switch: output is plain
// text everywhere, and the progress bar (cursor moves only) appears only on a terminal.
const TOP_LEVEL_HELP = `
Exit status: 0 done, 1 a check failed (verify), 2 bad usage or bad input, 70 internal error,
74 I/O fault (disk full, read error, a file changed or removed while in use), 130 Ctrl-C, 143 SIGTERM.
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
    .addHelpText("after", TOP_LEVEL_HELP);
  cmd.addCommand(quantizeCommand());
  cmd.addCommand(inspectCommand());
  cmd.addCommand(verifyCommand());
  cmd.addCommand(dequantizeCommand());
  cmd.addCommand(mergeIndexCommand());
  cmd.addCommand(webCommand());
  for (const c of [cmd, ...cmd.commands]) {
    const help = c === cmd ? "kquant --help" : `kquant ${c.name()} --help`;
    c.configureOutput({ outputError: (str, write) => write(`${parserError(str, help).format()}\n`) }).exitOverride();
  }
  return cmd;
}

/** Commander's "error: unknown option '--bogus'" as kquant's one line, pointing at the command's --help. */
export function parserError(commanderMessage: string, help: string): KquantError {
  const what = commanderMessage.trim().split("\n")[0]!.replace(/^error: /, "").replace(/ is invalid\. /, " is invalid: ").replace(/\.$/, "");
  return new KquantError({ what, hint: `see ${help}` });
}

export async function main(argv: string[]): Promise<number> {
  // Every file the command writes is collected, so that a failure or an interrupt removes them all.
  const outputs = beginOutputs();
  const stopHandling = handleInterrupts(outputs);
  try {
    await program().parseAsync(argv);
    outputs.keep();
    return 0;
  } catch (err) {
    // A failed check (exit 1) is a finished command whose outputs are whole; any other error is not.
    if (err instanceof KquantError && err.exitCode === 1) outputs.keep();
    else outputs.removeSync();
    if (err instanceof CommanderError) {
      // Help and version exit 0; every other parse error is bad usage.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof KquantError) {
      process.stderr.write(`${err.format()}\n`);
      return err.exitCode;
    }
    process.stderr.write(`kquant: internal error: ${(err as Error).stack ?? String(err)}\n`);
    return 70;
  } finally {
    stopHandling();
  }
}
