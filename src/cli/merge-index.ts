/** `kquant merge-index`: the index and manifest of a checkpoint quantized by `--shard i/N` jobs. */
import { printableLines } from "../errors.js";
import { Command } from "commander";
import { fsyncOption } from "./write-options.js";

export function mergeIndexCommand(): Command {
  return new Command("merge-index")
    .description("join the parts written by `kquant quantize --shard i/N` jobs into the output index and manifest")
    .argument("<paths...>", "the output folder holding every job's shards and parts, or the part files")
    .option("-f, --force", "overwrite an existing index and manifest")
    .addOption(fsyncOption())
    .option("--json", "print the report as JSON on stdout")
    .addHelpText(
      "after",
      `
Examples:
  kquant merge-index out/
  kquant merge-index out/model.int8.safetensors.index.json.part-*-of-4.json`,
    )
    .action(async (paths: string[], opts: { force?: boolean; fsync?: boolean; json?: boolean }) => {
      // Loaded when the command runs, so that `--version`, `--help` and the other commands do not pay for it.
      const { mergeIndex } = await import("../pipeline/quantize/merge-index.js");
      const report = await mergeIndex(paths, { force: !!opts.force, fsync: !!opts.fsync });
      if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        process.stdout.write(
          printableLines(
            `Merged ${report.parts.length} parts: ${report.shards} shards, ${report.tensors} tensors → ${report.index}\nManifest: ${report.manifest}\n` +
              `Left the ${report.parts.length} part files as they are (nothing reads them now; delete them once the output is verified)\n`,
          ),
        );
      }
    });
}
