/**
 * The multi-threaded tensor loop: the main thread reads and writes, worker threads quantize row
 * slices as soon as their rows have been read, hash the source as it lands (in order, on one
 * worker) and hash the stored tensors, all on SharedArrayBuffers.
 *
 * Memory: source and output buffers sized for the largest tensor, allocated once and reused. A
 * tensor hands its source buffer on as soon as its kernels are done, and its output buffer once
 * written and hashed, so the next tensor is read while this one is written. Two output buffers
 * and one source buffer (two while sources are small, buffer-slots.ts DOUBLE_SOURCE_LIMIT) keep the buffers
 * under 2 × the largest source whatever the checkpoint's size: outputs are at most half their
 * source. Workers hold one row slice's intermediates each.
 *
 * The bytes are those of the in-process loop: row slices are independent (row-split.ts) and
 * writes land at offsets the plan fixed, issued in plan order.
 */
import { byteLengthOf, elementCountOf } from "../../formats/dtypes.js";
import type { SafetensorsWriter } from "../../formats/safetensors-writer.js";
import type { TensorReader } from "../../formats/types.js";
import type { QuantizeStep, Step } from "../../plan/plan.js";
import { writtenBytes } from "../../layouts/layout.js";
import type { StoredBytes } from "../../plan/stored.js";
import { hashHex } from "../hash.js";
import { hashesOf, type TensorRecord } from "../manifest.js";
import type { Progress } from "../progress.js";
import { byteView } from "../../quant/tensor.js";
import { foldAbsMax, nonFiniteError, scaleFromAbsMax } from "./quantize-tensor.js";
import { rowRanges, rowSplitOf, slicedRange, sliceStep, type RowSplit } from "./row-split.js";
import type { SharedRange, TaskResult, WorkerPool } from "../workers.js";
import { largestBy } from "../../units.js";
import { tensorBuffer } from "../../formats/io.js";
import { sourceBuffers, throughSlots, type Slot } from "./buffer-slots.js";

/** Source bytes per quantize task: small enough to balance two cores and bound worker memory. */
const SLICE_BYTES = 2 * 1024 * 1024;
/** Source bytes per read: the slices within a part start while the next part is read. */
export const READ_BYTES = 4 * 1024 * 1024;
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

/** Stored tensors start 8-aligned in the output buffer, so kernels can write float32 scales there directly. */
const alignUp = (n: number): number => Math.ceil(n / 8) * 8;

function storedBytesOf(step: Step): number {
  return step.kind === "passthrough" ? 0 : step.stored.reduce((n, t) => n + alignUp(byteLengthOf(t.dtype, t.shape)), 0);
}

export async function streamParallel(ctx: StreamContext): Promise<void> {
  const { items } = ctx;
  const largestStored = largestBy(items, (it) => storedBytesOf(it.step))?.step;
  const maxStored = largestStored === undefined ? 0 : storedBytesOf(largestStored);
  // Allocated as tensorBuffer does: a header claiming a tensor too large for memory is one line naming it.
  const sources = sourceBuffers(items.map((it) => it.step.source));
  const outputs = Array.from({ length: items.length > 1 ? 2 : 1 }, () => tensorBuffer(maxStored, largestStored?.source.file ?? "", largestStored?.source.name ?? "", true));

  // Writes must be issued in plan order: each tensor waits for the previous one's turn, passed on
  // once it is over (run, failed or skipped).
  const turns = items.map(() => {
    let pass!: () => void;
    const turn = new Promise<void>((resolve) => (pass = resolve));
    return { turn, pass };
  });
  await throughSlots(
    items,
    sources,
    outputs,
    (item, i, slot) => processOne(ctx, item, slot, i === 0 ? Promise.resolve() : turns[i - 1]!.turn, turns[i]!.pass),
    (i) => turns[i]!.pass(),
  );
}

async function processOne(ctx: StreamContext, item: StreamItem, slot: Slot, waitTurn: Promise<void>, passTurn: () => void): Promise<void> {
  const { step, writer } = item;
  const { pool } = ctx;
  const n = step.source.byteLength;
  const source = new Uint8Array(slot.src, 0, n);
  const record = hashesOf(ctx.records[step.source.name]!).hashes!; // filled in as the hashes come
  const planned = step.kind === "quantize" ? step.stored : [];
  let offset = 0;
  const ranges = planned.map((t) => {
    const length = byteLengthOf(t.dtype, t.shape);
    const r: SharedRange = { buf: slot.out, offset, length };
    offset = alignUp(offset + length);
    return r;
  });
  const sourceRows = (rowBytes: number, from: number, to: number): SharedRange => ({ buf: slot.src, offset: from * rowBytes, length: (to - from) * rowBytes });

  // Row slices (row-split.ts) are quantized as soon as their rows have been read; a tensor whose
  // scale reduces over all rows starts its first pass (each slice's abs-max) the same way.
  const split = step.kind === "quantize" ? rowSplitOf(step) : null;
  const slices = split ? rowRanges(split, SLICE_BYTES) : [];
  const rowBytes = split?.sourceRowBytes ?? 0;
  const sliceTask = ([from, to]: [number, number]): Promise<TaskResult> => {
    const q = sliceStep(step as QuantizeStep, split!, from, to);
    const source = sourceRows(rowBytes, from, to);
    if (split!.reduced) return pool.run({ kind: "amax", step: q, source, allowNonFinite: ctx.allowNonFinite });
    const outputs = ranges.map((r, j) => {
      const part = slicedRange(split!.stored[j]!, from, to);
      return { buf: r.buf, offset: r.offset + part.offset, length: part.length };
    });
    return pool.run({ kind: "quantize", step: q, source, outputs, allowNonFinite: ctx.allowNonFinite });
  };
  const tasks: Promise<TaskResult>[] = [];
  // The source is hashed as it lands, on one worker (the hash runs in order), the others quantizing.
  const sourceHash = pool.hashStream();
  let sourceDigest: Promise<string> | undefined;
  let hashed = 0;
  try {
    for await (const filled of ctx.reader.readProgressively(step.source.name, source, READ_BYTES)) {
      const part = { buf: slot.src, offset: hashed, length: filled - hashed };
      if (filled < n) sourceHash.update(part);
      else sourceDigest = sourceHash.digest(part);
      hashed = filled;
      while (tasks.length < slices.length && slices[tasks.length]![1] * rowBytes <= filled) tasks.push(sliceTask(slices[tasks.length]!));
    }
  } catch (err) {
    // Nothing may still be reading the buffer when it is handed to the next tensor.
    await Promise.allSettled([...tasks, sourceHash.digest({ buf: slot.src, offset: 0, length: 0 })]);
    throw err;
  }

  let stored: Written[];
  if (step.kind === "passthrough") {
    record.source = await sourceDigest!;
    stored = [{ name: step.output.name, range: { buf: slot.src, offset: 0, length: n } }];
  } else {
    if (slices.length === 0) {
      tasks.push(pool.run({ kind: "quantize", step, source: { buf: slot.src, offset: 0, length: n }, outputs: ranges, allowNonFinite: ctx.allowNonFinite }));
    }
    let results = await Promise.all(tasks);
    if (split?.reduced && nonFiniteIn(results) === 0) {
      results = await Promise.all(secondPass(pool, step, split, slices, results, ranges, (from, to) => sourceRows(rowBytes, from, to)));
    }
    record.source = await sourceDigest!;
    slot.releaseSource();
    const bad = nonFiniteIn(results);
    if (bad > 0) throw nonFiniteError(step, step.source.file, bad, elementCountOf(step.source.shape)!);
    stored = writtenOf(step, ranges);
  }

  await waitTurn;
  const writes = stored.map((s) => writer.write(s.name, bytesOf(s)));
  // Counted in its turn, so the progress bar names tensors in file order, as they are written.
  ctx.progress.advance(n, step.source.name);
  passTurn();
  // A passthrough tensor is stored as read: its stored hash is the source hash.
  const hashes =
    step.kind === "passthrough"
      ? [Promise.resolve(record.source)]
      : stored.map((s) => ("range" in s ? pool.hash(s.range) : hashHex(s.bytes)));
  const [storedHex] = await Promise.all([Promise.all(hashes), Promise.all(writes)]);
  stored.forEach((s, j) => (record.stored[s.name] = storedHex[j]!));
}

/** A tensor to write: a range of a shared buffer (hashed by a worker), or bytes a layout made. */
type Written = { name: string; range: SharedRange } | { name: string; bytes: Uint8Array };

const bytesOf = (w: Written): Uint8Array => ("range" in w ? new Uint8Array(w.range.buf, w.range.offset, w.range.length) : w.bytes);

/** The layout's written tensors: stored ranges as they are, or bytes it encodes from them. */
function writtenOf(step: QuantizeStep, ranges: readonly SharedRange[]): Written[] {
  const byRole = new Map(step.stored.map((t, j) => [t.role, ranges[j]!]));
  const view = (r: SharedRange) => new Uint8Array(r.buf, r.offset, r.length);
  const zero = byRole.get("zero");
  const parts: StoredBytes = { values: view(byRole.get("values")!), scale: view(byRole.get("scale")!), ...(zero ? { zero: view(zero) } : {}) };
  return step.written.map((t): Written => (t.from !== undefined ? { name: t.name, range: byRole.get(t.from)! } : { name: t.name, bytes: writtenBytes(t, parts) }));
}

/** NaN and ±Inf the slices found (none are counted when they are allowed). */
function nonFiniteIn(results: readonly TaskResult[]): number {
  return results.reduce((sum, r) => sum + ("bad" in r ? r.bad : 0), 0);
}

/**
 * The second pass of a reduced split: the slices' abs-maxes make the tensor's scale, stored in its
 * output range, from which every slice's values are then quantized.
 */
function secondPass(
  pool: WorkerPool,
  step: QuantizeStep,
  split: RowSplit,
  slices: readonly [number, number][],
  firstPass: readonly TaskResult[],
  ranges: readonly SharedRange[],
  sourceRows: (from: number, to: number) => SharedRange,
): Promise<TaskResult>[] {
  const amaxes = firstPass.map((r) => (r as { amax: Float32Array }).amax);
  const amax = amaxes[0]!.slice();
  for (const m of amaxes.slice(1)) foldAbsMax(amax, m);
  const scale = byteView(scaleFromAbsMax(step, amax));
  const [values, scaleRange] = [ranges[0]!, ranges[1]!];
  if (scale.length !== scaleRange.length) throw new Error(`tensor "${step.source.name}": scale is ${scale.length} bytes, planned ${scaleRange.length}`);
  new Uint8Array(scaleRange.buf, scaleRange.offset, scaleRange.length).set(scale);
  return slices.map(([from, to]) => {
    const part = slicedRange(split.stored[0]!, from, to);
    return pool.run({
      kind: "quantize-scaled",
      step: sliceStep(step, split, from, to),
      source: sourceRows(from, to),
      scale: scaleRange,
      values: { buf: values.buf, offset: values.offset + part.offset, length: part.length },
    });
  });
}
