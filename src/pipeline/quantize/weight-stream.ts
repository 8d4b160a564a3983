/**
 * The tensor loop of `--scheme` and `--mlx` (scheme-run.ts, mlx-run.ts): each source tensor is
 * read part by part into a SharedArrayBuffer, its blocks of rows go to the worker threads as soon
 * as their rows have landed (format-slice.ts formatRows), which place their outputs into a shared
 * output buffer at offsets the plan fixed, and the whole tensor's outputs are written (the writer takes
 * planned tensors in any order) while the next tensor is already being read. A tensor written as
 * it is goes to the writer straight from the source buffer.
 *
 * Memory: source and output buffers are sized once per run (StreamBuffers: the shards of a --scheme
 * run and its first pass share them), for the largest tensor, and reused (buffer-slots.ts). One
 * source buffer (two while sources are small, buffer-slots.ts DOUBLE_SOURCE_LIMIT) and two output buffers (one
 * being filled, one being written), outputs being at most about half their source: the buffers
 * stay under 2 × the largest source tensor, whatever the checkpoint's size and the number of
 * threads (the exception: `--mlx --dtype float32` on 16-bit tensors kept float, whose outputs are
 * twice their source). Workers hold one block's intermediates each; blocks read the source and
 * write the outputs where they lie.
 */
import type { SafetensorsWriter } from "../../formats/safetensors-writer.js";
import { tensorBuffer } from "../../formats/io.js";
import { largestBy } from "../../units.js";
import type { WorkerPool } from "../workers.js";
import { formatRows, type FormatJob } from "./format-slice.js";
import { throughSlots } from "./buffer-slots.js";
import { READ_BYTES } from "./parallel-stream.js";

/** One source tensor of a run and the tensors it becomes. */
export interface StreamTensor {
  /** The source tensor as `StreamSource` names it, its file (messages) and byte length. */
  name: string;
  file: string;
  byteLength: number;
  /** Its [rows, job.cols] rows through `job` in blocks of `rowAlign` rows (format-slice.ts), or null: written as read. */
  format: { job: FormatJob; rows: number; rowAlign: number } | null;
  /** The planned tensors it is written as, in formatSlice's order (null format: one, the source's bytes). */
  outputs: readonly { name: string; byteLength: number }[];
  /** Where the outputs go: a safetensors writer, or whatever takes them (--scheme's values pass). */
  writer: Pick<SafetensorsWriter, "write">;
}

/** Where source tensors come from: TensorReader.readProgressively (or a view splitting tensors, scheme-run.ts). */
export interface StreamSource {
  readProgressively(name: string, into: Uint8Array, partBytes: number): AsyncIterable<number>;
}

/** The buffers tensors stream through: sized once for a whole run (its shards share them), reused. */
export interface StreamBuffers {
  /** Read into: one (two while sources are small), each as long as the largest source tensor. */
  sources: SharedArrayBuffer[];
  /** Formatted outputs are placed in (by the workers): two (one filled, one written), each as long as the largest tensor's outputs. */
  outputs: SharedArrayBuffer[];
}

const formattedBytes = (t: Pick<StreamTensor, "format" | "outputs">): number => (t.format === null ? 0 : t.outputs.reduce((n, o) => n + o.byteLength, 0));

/** The output buffers for `tensors` (every tensor of the run): two as long as the largest one's formatted outputs (none when nothing is formatted). */
export function outputBuffers(tensors: readonly Omit<StreamTensor, "writer">[]): SharedArrayBuffer[] {
  const largest = largestBy(tensors, formattedBytes);
  const size = largest === undefined ? 0 : formattedBytes(largest);
  return size === 0 ? [] : [0, 1].map(() => tensorBuffer(size, largest!.file, largest!.name, true));
}

/**
 * Reads, formats (on `pool`'s workers, or here without one) and writes every tensor of `tensors`
 * through `buffers`, overlapping one tensor's writes with the next one's read and blocks. Resolves
 * when all writes have landed; the first failure in `tensors`' order rejects, once nothing is left
 * running (the caller aborts its writers).
 */
export async function streamTensors(source: StreamSource, tensors: readonly StreamTensor[], pool: WorkerPool | null, buffers: StreamBuffers): Promise<void> {
  const outputs = buffers.outputs.length > 0 ? buffers.outputs : [new SharedArrayBuffer(0)];
  await throughSlots(tensors, buffers.sources, outputs, (t, _, slot) => streamOne(source, t, new Uint8Array(slot.src, 0, t.byteLength), slot.out, pool, slot.releaseSource));
}

/** One tensor: read into `src` (its blocks started as rows land), outputs into `out`, `releaseSource` once its blocks are done, then written. */
async function streamOne(source: StreamSource, t: StreamTensor, src: Uint8Array, out: SharedArrayBuffer, pool: WorkerPool | null, releaseSource: () => void): Promise<void> {
  const landed = source.readProgressively(t.name, src, READ_BYTES);
  if (t.format === null) {
    for await (const _ of landed);
    await t.writer.write(t.outputs[0]!.name, src);
    return;
  }
  const into: Uint8Array[] = [];
  for (let at = 0, i = 0; i < t.outputs.length; at += t.outputs[i]!.byteLength, i++) into.push(new Uint8Array(out, at, t.outputs[i]!.byteLength));
  await formatRows(pool, t.format.job, t.format.rows, t.format.rowAlign, src, into, landed);
  releaseSource();
  await Promise.all(t.outputs.map((o, i) => t.writer.write(o.name, into[i]!)));
}
