/** The option every writing command shares. */
import { Option } from "commander";

const FSYNC_HELP = "flush outputs to disk before finishing, so they survive a power cut (slower; off like cp)";

export function fsyncOption(): Option {
  return new Option("--fsync", FSYNC_HELP);
}
