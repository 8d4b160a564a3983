/**
 * The multi-threaded tensor loop: the main thread only reads and writes (both asynchronous),
 * worker threads quantize row slices and compute every sha256, all on SharedArrayBuffers.
 *
 * Memory: one source buffer and one output buffer sized for the largest tensor, allocated once
 * and reused; a second pair (to read the next tensor while this one computes and writes) only
 * when the largest tensor's outputs are small (see DOUBLE_BUFFER_LIMIT), so peak memory stays
 * near two source tensors whatever the checkpoint's size. Workers hold at most one row slice's
 * intermediates each.
 *
 * The bytes are those of the in-process loop: row slices are independent (row-split.ts) and
 * writes land at offsets the plan fixed, issued in plan order.
 */
import { byteLengthOf, elementCountOf } from "../formats/dtypes.js";
import type { SafetensorsWriter } from "../formats/safetensors-writer.js";
import type { TensorReader } from "../formats/types.js";
import type { Step } from "../plan/plan.js";
import type { TensorRecord } from "./manifest.js";
import type { Progress } from "./progress.js";
import { nonFiniteError } from "./quantize-tensor.js";
import { rowRanges, rowSplitOf, sliceStep, storedOf } from "./row-split.js";
import type { SharedRange, WorkerPool } from "./workers.js";

/** Source bytes per quantize task: small enough to balance two cores and bound worker memory. */
const SLICE_BYTES = 2 * 1024 * 1024;
/**
 * Two buffer pairs cost 2 × (largest source + largest outputs); the RSS goal is 2 × largest source
 * + 150 MiB, of which node and two worker isolates take ~95 MiB and the workers' garbage up to ~50.
 * So read-ahead only while both output buffers together stay under this.
 */
const DOUBLE_BUFFER_LIMIT = 16 * 1024 * 1024;

export interface StreamItem {
  step: Step;
  writer: SafetensorsWriter;
}

export interface StreamContext {
  reader: TensorReader;
  items: readonly StreamItem[];
  records: Record<string, TensorRecord>;
  progress: Progress;
  allowNonFinite: boolean;
  pool: WorkerPool;
}

interface Slot {
  src: SharedArrayBuffer;
  out: SharedArrayBuffer;
  free: Promise<void>;
}

/** Stored tensors start 8-aligned in the output buffer, so kernels can write float32 scales there directly. */
const alignUp = (n: number): number => Math.ceil(n / 8) * 8;

function storedBytesOf(step: Step): number {
  return step.kind === "passthrough" ? 0 : storedOf(step).reduce((n, t) => n + alignUp(byteLengthOf(t.dtype, t.shape)), 0);
}

export async function streamParallel(ctx: StreamContext): Promise<void> {
  const { items } = ctx;
  const maxSource = Math.max(0, ...items.map((it) => it.step.source.byteLength));
  const maxStored = Math.max(0, ...items.map((it) => storedBytesOf(it.step)));
  const slotCount = items.length > 1 && 2 * maxStored <= DOUBLE_BUFFER_LIMIT ? 2 : 1;
  const slots: Slot[] = Array.from({ length: slotCount }, () => ({
    src: new SharedArrayBuffer(maxSource),
    out: new SharedArrayBuffer(maxStored),
    free: Promise.resolve(),
  }));

  // Writes must be issued in plan order; each tensor waits for the previous one's turn.
  let previousTurn: Promise<void> = Promise.resolve();
  // The first failure in plan order is reported, as the in-process loop would.
  const failures: { index: number; error: unknown }[] = [];
  const running: Promise<void>[] = [];
  for (let i = 0; i < items.length; i++) {
    const slot = slots[i % slotCount]!;
    let passTurn!: () => void;
    const turn = new Promise<void>((resolve) => (passTurn = resolve));
    const waitTurn = previousTurn;
    previousTurn = turn;
    const done = slot.free.then(async () => {
      try {
        if (failures.length === 0) await processOne(ctx, items[i]!, slot, waitTurn, passTurn);
      } catch (error) {
        failures.push({ index: i, error });
      } finally {
        passTurn();
      }
    });
    slot.free = done;
    running.push(done);
  }
  await Promise.all(running);
  if (failures.length > 0) throw failures.reduce((a, b) => (b.index < a.index ? b : a)).error;
}

async function processOne(ctx: StreamContext, item: StreamItem, slot: Slot, waitTurn: Promise<void>, passTurn: () => void): Promise<void> {
  const { step, writer } = item;
  const { pool } = ctx;
  const n = step.source.byteLength;
  const source = new Uint8Array(slot.src, 0, n);
  await ctx.reader.read(step.source.name, source);
  const sourceRange: SharedRange = { buf: slot.src, offset: 0, length: n };
  const sourceHash = pool.hash(sourceRange);
  // Awaited below unless the tensor fails first; never an unhandled rejection.
  sourceHash.catch(() => undefined);
  const record = ctx.records[step.source.name]!;

  let stored: { name: string; range: SharedRange }[];
  if (step.kind === "passthrough") {
    stored = [{ name: step.output.name, range: sourceRange }];
  } else {
    const planned = storedOf(step);
    let offset = 0;
    const ranges = planned.map((t) => {
      const length = byteLengthOf(t.dtype, t.shape);
      const r: SharedRange = { buf: slot.out, offset, length };
      offset = alignUp(offset + length);
      return r;
    });
    const split = rowSplitOf(step);
    const tasks = split
      ? rowRanges(split, SLICE_BYTES).map(([from, to]) =>
          pool.run({
            kind: "quantize",
            step: sliceStep(step, split, from, to),
            source: { buf: slot.src, offset: from * split.sourceRowBytes, length: (to - from) * split.sourceRowBytes },
            outputs: ranges.map((r, j) => ({
              buf: r.buf,
              offset: r.offset + from * split.storedRowBytes[j]!,
              length: (to - from) * split.storedRowBytes[j]!,
            })),
            allowNonFinite: ctx.allowNonFinite,
          }),
        )
      : [pool.run({ kind: "quantize", step, source: sourceRange, outputs: ranges, allowNonFinite: ctx.allowNonFinite })];
    const results = await Promise.all(tasks);
    const bad = results.reduce((sum, r) => sum + (r.kind === "quantize" ? r.bad : 0), 0);
    if (bad > 0) throw nonFiniteError(step, step.source.file, bad, elementCountOf(step.source.shape)!);
    stored = planned.map((t, j) => ({ name: t.name, range: ranges[j]! }));
  }

  await waitTurn;
  const writes = stored.map((s) => writer.write(s.name, new Uint8Array(s.range.buf, s.range.offset, s.range.length)));
  passTurn();
  // A passthrough tensor is stored as read: its stored hash is the source hash.
  const hashes = step.kind === "passthrough" ? [sourceHash] : stored.map((s) => pool.hash(s.range));
  const [sourceHex, storedHex] = await Promise.all([sourceHash, Promise.all(hashes), Promise.all(writes)]);
  record.sha256.source = sourceHex;
  stored.forEach((s, j) => (record.sha256.stored[s.name] = storedHex[j]!));
  ctx.progress.advance(n, step.source.name);
}
