/** `--threads N`, shared by the commands that work on worker threads (quantize, verify, dequantize). */
import { InvalidArgumentError, Option } from "commander";

const THREADS_HELP = "worker threads (default: KQUANT_THREADS or one per core, at most 4; 0: none)";

/** `--threads`'s value: a non-negative integer (0: no worker threads). */
export function parseThreads(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError("not an integer.");
  if (Number(value) < 0) throw new InvalidArgumentError("expected a non-negative integer.");
  return Number(value);
}

/** The `--threads N` option, the same on every command that uses worker threads. */
export function threadsOption(): Option {
  return new Option("--threads <n>", THREADS_HELP).argParser(parseThreads);
}
