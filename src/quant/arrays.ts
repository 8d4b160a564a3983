/**
 * Where a kernel (MLX's, llm-compressor's) gets the arrays it writes its outputs and intermediates
 * in: fresh ones, which the caller may keep, or ones reused from call to call by a thread that
 * formats block after block and copies each block's outputs out before the next one.
 */
/** The typed arrays the kernels make their outputs and intermediates in. */
export type KernelArray = Float32Array | Uint16Array | Uint32Array | Uint8Array;

/**
 * Where a kernel gets an array of `n` elements for `role` (a name unique within the kernel's
 * call): fresh ones (freshArrays, the default), or ones kept from call to call (reusedArrays).
 */
export type Arrays = <T extends KernelArray>(role: string, of: new (n: number) => T, n: number) => T;

/** A new zeroed array every time: results the caller may keep. */
export const freshArrays: Arrays = (_role, of, n) => new of(n);

/**
 * Arrays kept by role and handed out again (the first n elements, not zeroed) on the next call:
 * a worker formatting block after block (pipeline/worker-entry.ts, and the main thread's in-process blocks) then leaves no garbage, which
 * V8 would collect late and in bulk, holding the peak memory up. A kernel's results are only good
 * until the next call with the same arrays.
 */
export function reusedArrays(): Arrays {
  const kept = new Map<string, KernelArray>();
  return <T extends KernelArray>(role: string, of: new (n: number) => T, n: number): T => {
    let a = kept.get(role);
    if (!(a instanceof of) || a.length < n) {
      a = new of(n);
      kept.set(role, a);
    }
    return a.subarray(0, n) as T;
  };
}
