/**
 * A quantize worker thread: hashes or quantizes byte ranges of SharedArrayBuffers the main
 * thread owns, so nothing large is copied between threads. See workers.ts for the protocol.
 */
import { parentPort } from "node:worker_threads";
import { hashHex, hashStream, type HashStream } from "./hash.js";
import { quantizeCounted, quantizeWithScale, Scratch, sliceAbsMax } from "./quantize/quantize-tensor.js";
import { KquantError } from "../errors.js";
import type { Task, TaskResult, WorkerError } from "./workers.js";
import { simdActive } from "../quant/wasm/kernels.js";
import { checkRecordBytes } from "./read-back/check-record.js";
import { dequantizeBytes, layoutDequantizeBytes } from "./read-back/record-values.js";
import { tensorStatsOf } from "./read-back/stats.js";
import { formatBlock, packParts } from "./quantize/format-slice.js";
import { reusedArrays } from "../quant/arrays.js";

const view = (r: { buf: SharedArrayBuffer; offset: number; length: number }) => new Uint8Array(r.buf, r.offset, r.length);

// The kernels write straight into the shared output ranges and keep their intermediates here,
// so slice after slice allocates almost nothing and a worker's memory stays at one slice's worth.
const scratch = new Scratch();
// The same for --scheme's and --mlx's blocks (quant/arrays.ts): their outputs are packed into the
// block's slot (posted) before the next block reuses the arrays.
const arrays = reusedArrays();

/** Hashes being fed part by part (workers.ts hashStream), by stream id. */
const streams = new Map<number, HashStream>();

async function run(task: Task): Promise<TaskResult> {
  if (task.kind === "hash") return { kind: "hash", hex: await hashHex(view(task.data)) };
  if (task.kind === "hash-part") {
    const hash = streams.get(task.stream) ?? (await hashStream());
    hash.update(view(task.data));
    if (!task.final) {
      streams.set(task.stream, hash);
      return { kind: "hash", hex: "" };
    }
    streams.delete(task.stream);
    return { kind: "hash", hex: hash.digest() };
  }
  if (task.kind === "format-slice") {
    return { kind: "format-slice", parts: formatBlock(task.job, task.rows, task.idx, task.n, task.blockRows, task.bytes, task.lengths, arrays) };
  }
  if (task.kind === "stats") return { kind: "stats", stats: tensorStatsOf(task.dtype, task.bytes, task.bins) };
  if (task.kind === "verify-record") return { kind: "verify-record", findings: await checkRecordBytes(task.input) };
  if (task.kind === "dequantize-record") {
    const bytes = dequantizeBytes(task.rec, task.parts, task.dtype, task.out);
    // float32 output is written straight into `out`; 16-bit output is encoded there.
    if (bytes.buffer !== task.out.buffer) task.out.set(bytes);
    return { kind: "done" };
  }
  if (task.kind === "dequantize-layout-record") {
    layoutDequantizeBytes(task.layout, task.name, task.rec, task.written, task.dtype, task.out);
    return { kind: "done" };
  }
  if (task.kind === "amax") return { kind: "amax", ...sliceAbsMax(task.step, view(task.source), { allowNonFinite: task.allowNonFinite, scratch }) };
  if (task.kind === "quantize-scaled") {
    const scale = new Float32Array(task.scale.buf, task.scale.offset, task.scale.length / 4);
    quantizeWithScale(task.step, view(task.source), scale, { values: view(task.values), scratch });
    return { kind: "quantize", bad: 0 };
  }
  const [values, scale, zero] = task.outputs.map(view);
  const { bad } = quantizeCounted(task.step, view(task.source), {
    allowNonFinite: task.allowNonFinite,
    into: { values: values!, scale: scale!, ...(zero ? { zero } : {}) },
    scratch,
  });
  return { kind: "quantize", bad };
}

/**
 * A result as posted: a block's outputs packed into its source bytes (format-slice.ts packParts:
 * shared memory, nothing copied again, nothing left for the collector), or where they do not fit
 * (a cast to a wider float) into one fresh buffer, handed over instead of copied.
 */
function posted(task: Task, result: TaskResult): [TaskResult, ArrayBuffer[]] {
  if (task.kind !== "format-slice" || result.kind !== "format-slice" || result.parts === null) return [result, []];
  const parts = packParts(result.parts, task.bytes);
  const buffer = parts[0]?.bytes.buffer;
  return [{ kind: "format-slice", parts }, buffer instanceof ArrayBuffer && buffer !== task.bytes.buffer ? [buffer] : []];
}

/** `err` as posted to the main thread: structured cloning keeps plain data only, so a KquantError goes field by field. */
function workerError(err: unknown): WorkerError {
  if (err instanceof KquantError) return { fields: err.fields(), message: err.message };
  const e = err as Error;
  return { message: e?.message ?? String(err), ...(e?.stack !== undefined ? { stack: e.stack } : {}) };
}

// The hasher and the SIMD kernels are made while the main thread still plans and reads, not on
// the first task (the spent hasher waits in hash.ts for it).
void hashStream().then((h) => h.digest());
simdActive();

// Tasks run one after another in arrival order, even when one awaits (a hasher being created):
// the parts of a hash stream must be fed in order.
let previous: Promise<void> = Promise.resolve();
parentPort!.on("message", ({ id, task }: { id: number; task: Task }) => {
  previous = previous.then(async () => {
    try {
      const [result, transfer] = posted(task, await run(task));
      parentPort!.postMessage({ id, ok: true, result }, transfer);
    } catch (err) {
      // A kernel's own check names no file or tensor: the task's step does.
      const source = "step" in task ? task.step.source : undefined;
      const named = err instanceof KquantError && source ? err.within({ file: source.file, tensor: source.name }) : err;
      parentPort!.postMessage({ id, ok: false, error: workerError(named) });
    }
  });
});
