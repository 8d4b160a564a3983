/**
 * The tensor loop of `--scheme` and `--mlx` (scheme-run.ts, mlx-run.ts), through a ring of small
 * shared slots rather than whole-tensor buffers: each source tensor is cut into blocks of whole
 * rows (format-slice.ts rowBlocks), each block is read into a free slot, formatted on a worker
 * thread or in turn here (format-slice.ts formatBlock, reading the slot where it lies; packParts
 * then packs its outputs back into it) and its outputs written at
 * their offsets in the planned tensors (the writer takes byte ranges in any order) as soon as it
 * is done, which frees the slot for a block further on. So block k + 1 is read while the workers
 * quantize blocks k, k − 1, … and earlier blocks' outputs are being written, across tensor
 * boundaries. A tensor written as it is goes through the slots the same way, a slot's worth at a
 * time.
 *
 * Memory: the slots (ringBuffers: two per worker thread and two more, each one block: about
 * SLICE_BYTES of source, more only where a block's `rowAlign` rows are larger) and the blocks'
 * outputs on their way to the file; no buffer grows with the tensors, whatever the checkpoint's
 * size (a source that cannot read a tensor by byte ranges, StreamSource.rangeReader, is the
 * exception: that tensor is read whole first).
 */
import type { SafetensorsWriter } from "../../formats/safetensors-writer.js";
import { tensorBuffer } from "../../formats/io.js";
import type { WorkerPool } from "../workers.js";
import { formatBlock, packParts, RefusedValues, rowBlocks, SLICE_BYTES, type BlockPart, type FormatJob } from "./format-slice.js";
import { reusedArrays, type Arrays } from "../../quant/arrays.js";
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
  /** Where the outputs go, range by range: a safetensors writer, or whatever takes them (--scheme's values pass). */
  writer: Pick<SafetensorsWriter, "writeAt">;
}

/** Where source tensors come from: a TensorReader (or a view splitting tensors, scheme-run.ts). */
export interface StreamSource {
  /** Fills `into` with tensor `name`'s bytes from `byteOffset` on; null when the tensor cannot be read by ranges. */
  rangeReader(name: string): ((into: Uint8Array, byteOffset: number) => Promise<void>) | null;
  readProgressively(name: string, into: Uint8Array, partBytes: number): AsyncIterable<number>;
}

/** The slots tensors stream through (ringBuffers): sized once for a whole run (--scheme's shards share them), reused. */
export interface Ring {
  slots: SharedArrayBuffer[];
  /** Source bytes per block (format-slice.ts rowBlocks). */
  sliceBytes: number;
}

/** The bytes of tensor `t`'s largest block (its first), or of one piece of a tensor copied as it is. */
function blockBytes(t: Omit<StreamTensor, "writer">, sliceBytes: number): number {
  if (t.format === null) return Math.min(t.byteLength, sliceBytes);
  const [from, to] = rowBlocks(t.format.rows, t.format.rowAlign, t.byteLength, sliceBytes)[0]!;
  return t.format.rows === 0 ? 0 : ((to - from) * t.byteLength) / t.format.rows;
}

/**
 * The ring for `tensors` (every tensor of the run) on `pool`: two slots per worker (one being
 * worked on, one waiting in its queue) and two more (one being read, one being written; two in
 * all without workers), each as long as the largest block.
 */
export function ringBuffers(tensors: readonly Omit<StreamTensor, "writer">[], pool: WorkerPool | null, sliceBytes = SLICE_BYTES): Ring {
  let size = 0;
  let largest: Omit<StreamTensor, "writer"> | undefined;
  for (const t of tensors) {
    const b = blockBytes(t, sliceBytes);
    if (b > size) [size, largest] = [b, t];
  }
  const count = 2 + 2 * (pool?.size ?? 0);
  return { slots: Array.from({ length: count }, () => tensorBuffer(size, largest?.file ?? "", largest?.name ?? "", true)), sliceBytes };
}

/** The free slots, handed out in request order. */
class Slots {
  private readonly free: SharedArrayBuffer[];
  private readonly waiting: ((slot: SharedArrayBuffer) => void)[] = [];
  constructor(slots: readonly SharedArrayBuffer[]) {
    this.free = [...slots];
  }
  take(): Promise<SharedArrayBuffer> {
    const slot = this.free.pop();
    return slot !== undefined ? Promise.resolve(slot) : new Promise((resolve) => this.waiting.push(resolve));
  }
  give(slot: SharedArrayBuffer): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(slot);
    else this.free.push(slot);
  }
}

/**
 * Reads, formats (on `pool`'s workers, or here without one) and writes every tensor of `tensors`
 * through `ring`'s slots. Resolves when all writes have landed; the first failure in `tensors`'
 * order (block by block) rejects, once nothing is left running (the caller aborts its writers): a
 * `checkValues` block holding a non-finite value with RefusedValues.
 */
export async function streamTensors(source: StreamSource, tensors: readonly StreamTensor[], pool: WorkerPool | null, ring: Ring): Promise<void> {
  const slots = new Slots(ring.slots);
  const running = new Set<Promise<void>>();
  let failure: { at: number; error: unknown } | null = null;
  const failed = (at: number, error: unknown) => {
    if (failure === null || at < failure.at) failure = { at, error };
  };
  let at = 0; // blocks in tensors' order, to name the first failure
  // In-process blocks, as a worker's: the kernels' arrays reused, the outputs packed into the slot.
  const arrays = reusedArrays();
  /** `work` on a slot once one is free: `fill` it, then (not awaited) `use` it; the slot is given back when `use` is over. */
  const inSlot = async (fill: (slot: SharedArrayBuffer) => Promise<Uint8Array>, use: (bytes: Uint8Array) => Promise<void>): Promise<void> => {
    const slot = await slots.take();
    let bytes: Uint8Array;
    try {
      bytes = await fill(slot);
    } catch (err) {
      slots.give(slot);
      throw err;
    }
    const mine = at++;
    const done: Promise<void> = use(bytes)
      .catch((err: unknown) => failed(mine, err))
      .finally(() => {
        slots.give(slot);
        running.delete(done);
      });
    running.add(done);
  };
  try {
    for (const t of tensors) {
      if (failure !== null) break;
      await streamOne(source, t, pool, arrays, ring.sliceBytes, inSlot, () => failure !== null);
    }
  } catch (err) {
    failed(at, err);
  }
  while (running.size > 0) await Promise.allSettled([...running]);
  if (failure !== null) throw (failure as { error: unknown }).error;
}

type InSlot = (fill: (slot: SharedArrayBuffer) => Promise<Uint8Array>, use: (bytes: Uint8Array) => Promise<void>) => Promise<void>;

/** One tensor, block by block (or piece by piece, written as it is) through `inSlot`, until `stopped`. */
async function streamOne(source: StreamSource, t: StreamTensor, pool: WorkerPool | null, arrays: Arrays, sliceBytes: number, inSlot: InSlot, stopped: () => boolean): Promise<void> {
  const read = source.rangeReader(t.name) ?? (await wholeTensor(source, t));
  const fill = (from: number, to: number) => async (slot: SharedArrayBuffer) => {
    const bytes = new Uint8Array(slot, 0, to - from);
    await read(bytes, from);
    return bytes;
  };
  if (t.format === null) {
    const out = t.outputs[0]!.name;
    if (t.byteLength === 0) return t.writer.writeAt(out, 0, new Uint8Array(0));
    for (let from = 0; from < t.byteLength && !stopped(); from += sliceBytes) {
      const to = Math.min(t.byteLength, from + sliceBytes);
      await inSlot(fill(from, to), (bytes) => t.writer.writeAt(out, from, bytes));
    }
    return;
  }
  const { job, rows, rowAlign } = t.format;
  const rowBytes = rows === 0 ? 0 : t.byteLength / rows;
  const ranges = rowBlocks(rows, rowAlign, t.byteLength, sliceBytes);
  const lengths = t.outputs.map((o) => o.byteLength);
  for (const [idx, [r0, r1]] of ranges.entries()) {
    if (stopped()) return;
    const spec = { job, rows, idx, n: ranges.length, blockRows: r1 - r0, lengths };
    await inSlot(fill(r0 * rowBytes, r1 * rowBytes), async (bytes) => {
      let parts: BlockPart[] | null;
      if (pool === null || rows === 0) {
        parts = formatBlock(spec.job, spec.rows, spec.idx, spec.n, spec.blockRows, bytes, lengths, arrays);
        if (parts !== null) parts = packParts(parts, bytes);
      } else parts = ((await pool.run({ kind: "format-slice", ...spec, bytes })) as { parts: BlockPart[] | null }).parts;
      if (parts === null) throw new RefusedValues();
      await Promise.all(parts.map((p) => t.writer.writeAt(t.outputs[p.out]!.name, p.at, p.bytes)));
    });
  }
}

/** A tensor the source cannot read by ranges: read whole (as the source reads it), its ranges copied from there. */
async function wholeTensor(source: StreamSource, t: StreamTensor): Promise<(into: Uint8Array, byteOffset: number) => Promise<void>> {
  const whole = new Uint8Array(tensorBuffer(t.byteLength, t.file, t.name, true));
  for await (const _ of source.readProgressively(t.name, whole, READ_BYTES));
  return async (into, byteOffset) => into.set(whole.subarray(byteOffset, byteOffset + into.length));
}
