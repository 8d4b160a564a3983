/**
 * A quantize worker thread: hashes or quantizes byte ranges of SharedArrayBuffers the main
 * thread owns, so nothing large is copied between threads. See workers.ts for the protocol.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { parentPort } from "node:worker_threads";
import { sha256Hex } from "./hash.js";
import { quantizeCounted } from "./quantize-tensor.js";
import type { Task, TaskResult } from "./workers.js";

const view = (r: { buf: SharedArrayBuffer; offset: number; length: number }) => new Uint8Array(r.buf, r.offset, r.length);

// Each task's kernel outputs are garbage as soon as they are copied out, but V8 only collects
// external (ArrayBuffer) memory after tens of MiB per isolate; collecting every few slices keeps
// each worker's share of the peak RSS near one slice's intermediates.
setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as () => void;
const COLLECT_EVERY = 24 * 1024 * 1024;
let sinceCollect = 0;

/** Roughly what one quantize task leaves behind: its outputs and the float32 copy of a non-float32 source. */
function garbageOf(task: Task & { kind: "quantize" }): number {
  const { source } = task.step;
  const elements = task.source.length / (source.dtype === "F64" ? 8 : source.dtype === "F32" ? 4 : 2);
  const converted = source.dtype === "F32" ? 0 : elements * 4;
  return task.outputs.reduce((n, o) => n + o.length, 0) + converted + elements;
}

function run(task: Task): TaskResult {
  if (task.kind === "hash") return { kind: "hash", hex: sha256Hex(view(task.data)) };
  const { stored, bad } = quantizeCounted(task.step, view(task.source), { allowNonFinite: task.allowNonFinite });
  if (stored !== null) {
    const parts = [stored.values, stored.scale, ...(stored.zero ? [stored.zero] : [])];
    parts.forEach((bytes, i) => view(task.outputs[i]!).set(bytes));
  }
  sinceCollect += garbageOf(task);
  if (sinceCollect >= COLLECT_EVERY) {
    collect();
    sinceCollect = 0;
  }
  return { kind: "quantize", bad };
}

parentPort!.on("message", ({ id, task }: { id: number; task: Task }) => {
  try {
    parentPort!.postMessage({ id, ok: true, result: run(task) });
  } catch (err) {
    const e = err as Error & { exitCode?: number };
    parentPort!.postMessage({ id, ok: false, error: { name: e.name, message: e.message, stack: e.stack, exitCode: e.exitCode } });
  }
});
