/**
 * The buffer rotation of the Keras modes' tensor loop (parallel-stream.ts; --scheme and --mlx stream
 * through weight-stream.ts's ring of row blocks instead): tensor i reads into source buffer i mod |sources| and
 * formats into output buffer i mod |outputs|, each as soon as the tensor before it in that slot has
 * let go (a source when its kernels are done, an output once written), so one tensor is read while
 * the last one is quantized and the one before is written, with buffers sized once.
 */
import { tensorBuffer } from "../../formats/io.js";
import { largestBy } from "../../units.js";

/**
 * A second source buffer (reading a tensor while the last one is still being quantized) only up
 * to this size: the RSS goal is 2 × the largest source + 150 MiB, of which node and two worker
 * isolates take ~110 MiB, and three buffers of this size fit in the rest.
 */
export const DOUBLE_SOURCE_LIMIT = 16 * 1024 * 1024;

/**
 * The source buffers for `tensors` (every source tensor of a run): one as long as the largest,
 * two while that is at most DOUBLE_SOURCE_LIMIT. Allocated as tensorBuffer does: a header claiming
 * a tensor too large for memory is one line naming it.
 */
export function sourceBuffers(tensors: readonly { name: string; file: string; byteLength: number }[]): SharedArrayBuffer[] {
  const largest = largestBy(tensors, (t) => t.byteLength);
  const count = tensors.length > 1 && (largest?.byteLength ?? 0) <= DOUBLE_SOURCE_LIMIT ? 2 : 1;
  return Array.from({ length: count }, () => tensorBuffer(largest?.byteLength ?? 0, largest?.file ?? "", largest?.name ?? "", true));
}

/** The buffers one tensor works in; `releaseSource` hands the source buffer on to the next tensor in its slot. */
export interface Slot {
  src: SharedArrayBuffer;
  out: SharedArrayBuffer;
  releaseSource: () => void;
}

/**
 * Runs `work` on every item through the rotating buffers (see the module comment); `settled(i)`
 * runs once item i is over, whether it ran, failed or was skipped. Once an item fails, items not
 * yet started are skipped; resolves when every item is over, rejecting with the first failure in
 * `items`' order (as an in-process loop would report it).
 */
export async function throughSlots<T>(
  items: readonly T[],
  sources: readonly SharedArrayBuffer[],
  outputs: readonly SharedArrayBuffer[],
  work: (item: T, index: number, slot: Slot) => Promise<void>,
  settled?: (index: number) => void,
): Promise<void> {
  const reusable = (buf: SharedArrayBuffer) => ({ buf, free: Promise.resolve() });
  const srcs = sources.map(reusable);
  const outs = outputs.map(reusable);
  const failures: { index: number; error: unknown }[] = [];
  const running = items.map((item, i) => {
    const source = srcs[i % srcs.length]!;
    const output = outs[i % outs.length]!;
    let releaseSource!: () => void;
    const sourceReleased = new Promise<void>((resolve) => (releaseSource = resolve));
    const done = Promise.all([source.free, output.free]).then(async () => {
      try {
        if (failures.length === 0) await work(item, i, { src: source.buf, out: output.buf, releaseSource });
      } catch (error) {
        failures.push({ index: i, error });
      } finally {
        releaseSource();
        settled?.(i);
      }
    });
    source.free = sourceReleased;
    output.free = done;
    return done;
  });
  await Promise.all(running);
  if (failures.length > 0) throw failures.reduce((a, b) => (b.index < a.index ? b : a)).error;
}
