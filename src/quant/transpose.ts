/** Row-major 2-D transpose, blocked so both sides stay in cache on large matrices. */
import type { TypedArray } from "./tensor.js";

const BLOCK = 64;

export function transpose2d<T extends TypedArray>(src: T, rows: number, cols: number, dst: T): T {
  for (let r0 = 0; r0 < rows; r0 += BLOCK) {
    const r1 = Math.min(r0 + BLOCK, rows);
    for (let c0 = 0; c0 < cols; c0 += BLOCK) {
      const c1 = Math.min(c0 + BLOCK, cols);
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
      }
    }
  }
  return dst;
}
