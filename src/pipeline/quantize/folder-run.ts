/**
 * `kquant quantize MODEL_DIR … -o OUT_DIR`: the weights are quantized as for files, into a
 * staging folder beside OUT_DIR holding the input's file names; config.json is written for the
 * layout (copied unchanged for kquant's own), every other file is copied byte for byte, and the
 * staging folder is renamed to OUT_DIR. A failure or an interrupt removes the staging folder, so
 * OUT_DIR is either the old one or the whole new one. `--shard i/N` jobs share OUT_DIR instead
 * (each writes its shards and part, and the same config.json and copies, atomically).
 */
import { mkdir } from "node:fs/promises";
import {
  checkOutputFolder,
  commitStaging,
  CONFIG_FILE,
  configText,
  copyEntries,
  createStaging,
  discardStaging,
  writeConfig,
  type ModelFolder,
} from "../../formats/folder.js";
import { asUserError } from "../../formats/io.js";
import type { TensorReader } from "../../formats/types.js";
import { KQUANT_LAYOUT } from "../../layouts/kquant.js";
import type { Layout, LayoutTensor } from "../../layouts/layout.js";
import { buildPlan, type Plan, type Step } from "../../plan/plan.js";
import type { Rule } from "../../plan/rules.js";
import { checkOutputs, defaultFolderOutput, outputPaths, type OutputPaths } from "./outputs.js";
import type { ShardSpec } from "./shard-select.js";

/** What a folder run needs of the quantize job. */
export interface FolderJob {
  output?: string;
  tag: string;
  rules: Rule[];
  layout?: Layout;
  shard?: ShardSpec;
  force?: boolean;
  dryRun?: boolean;
  fsync?: boolean;
}

/** The layout's view of a run's tensors. */
export function layoutTensorsOf(steps: readonly Step[]): LayoutTensor[] {
  return steps.map((s) => ({ name: s.source.name, shape: s.source.shape, spec: s.kind === "quantize" ? s.spec : null }));
}

/** config.json for the output, or null when the layout keeps it as it is (then it is copied). */
function outputConfig(job: FolderJob, folder: ModelFolder, reader: TensorReader, plan: Plan): Record<string, unknown> | null {
  const layout = job.layout ?? KQUANT_LAYOUT;
  if (!layout.config) return null;
  // A --shard job plans its own tensors only; the config describes them all, the same in every job.
  const whole = job.shard ? buildPlan(folder.weights, reader.tensors, job.rules, layout) : plan;
  return layout.config(folder.config, layoutTensorsOf(whole.steps));
}

/**
 * Runs `writeFiles` (the weights, index and manifest at `paths`) for a folder input, then the
 * config and the copies, and commits the folder. Returns the paths (in the staging folder).
 */
export async function runInFolder(
  job: FolderJob,
  folder: ModelFolder,
  reader: TensorReader,
  plan: Plan,
  writeFiles: (paths: OutputPaths, others: Record<string, string>) => Promise<void>,
): Promise<OutputPaths> {
  const out = job.output ?? defaultFolderOutput(folder.dir, job.tag);
  const config = outputConfig(job, folder, reader, plan);
  const copies = config === null ? [CONFIG_FILE, ...folder.others] : folder.others;
  // The config the layout writes, hashed into the manifest (a copied one is the input's own).
  const others: Record<string, string> = config === null ? {} : { [CONFIG_FILE]: configText(config) };
  if (job.dryRun) return outputPaths({ input: folder.weights, tag: job.tag, folder: { out, staging: out } }, plan.steps);

  if (job.shard) {
    await checkOutputFolder(out, folder.dir, "shared");
    await mkdir(out, { recursive: true }).catch((err: unknown) => {
      throw asUserError(err, out);
    });
    const paths = outputPaths({ input: folder.weights, tag: job.tag, shard: job.shard, folder: { out, staging: out } }, plan.steps);
    await checkOutputs(paths.all, [], !!job.force);
    await writeFiles(paths, others);
    await finishFolder(out, folder, config, copies, job);
    return paths;
  }

  let staged: OutputPaths | undefined;
  await inStaging(out, folder.dir, !!job.force, async (staging) => {
    staged = outputPaths({ input: folder.weights, tag: job.tag, folder: { out, staging } }, plan.steps);
    await writeFiles(staged, others);
    await finishFolder(staging, folder, config, copies, job);
  });
  return staged!;
}

/**
 * Builds output folder `out` (refused when it is or lies inside `inputDir`, or exists without
 * `force`) in a hidden staging folder beside it, filled by `fill`, then renamed into place. A
 * failure or an interrupt (SIGINT, SIGTERM) removes the staging folder: `out` is the old one or
 * the whole new one.
 */
export async function inStaging(out: string, inputDir: string, force: boolean, fill: (staging: string) => Promise<void>): Promise<void> {
  await checkOutputFolder(out, inputDir, force);
  // Registered as a live temp: an interrupt removes it (src/cli/signals.ts), and `out` is renamed last.
  const staging = await createStaging(out);
  try {
    await fill(staging);
    await commitStaging(staging, out, force);
  } catch (err) {
    await discardStaging(staging);
    throw err;
  }
}

async function finishFolder(dir: string, folder: ModelFolder, config: Record<string, unknown> | null, copies: string[], job: FolderJob): Promise<void> {
  if (config !== null) await writeConfig(dir, config, { fsync: !!job.fsync });
  await copyEntries(folder.dir, dir, copies);
}
