/**
 * How far a dequantized tensor is from its original, accumulated in float64 in one streaming
 * pass (chunks may come in any size), so a tensor never has to be held twice.
 * The sums run over blocks of ERROR_BLOCK elements, in WebAssembly SIMD where it can (two
 * float64 lanes per sum): their last digits depend on the order of addition, which is fixed by
 * the block boundaries, not by who feeds the blocks or how many threads there are.
 *
 * Pairs that are both NaN, or the same infinity, agree and are left out of the sums; any other
 * pair with a non-finite side is a mismatch, counted and reported as an infinite max error.
 */

import { simdErrorSums } from "./wasm/read-back-kernels.js";

export interface ErrorMetrics {
  /** Elements compared (finite pairs). */
  count: number;
  maxAbsError: number;
  rmse: number;
  /** 10·log10(Σ ref² / Σ (ref − approx)²): Infinity when exact, −Infinity when the reference is all zeros and the approximation is not. */
  sqnrDb: number;
  /** dot / (‖ref‖·‖approx‖); 1 when both are all zeros, 0 when only one is. */
  cosine: number;
  /** Pairs where both are NaN or the same infinity. */
  nonFiniteAgreeing: number;
  /** Pairs where one side is non-finite and the other is not (or a different infinity). */
  nonFiniteMismatches: number;
}

/** Elements summed apart before joining the totals (see add); a caller feeding blocks aligned to it gets the same sums. */
export const ERROR_BLOCK = 64 * 1024;
const BLOCK = ERROR_BLOCK;

/** One ERROR_BLOCK's sums, which ErrorAccumulator adds to its totals in block order. */
export interface BlockSums {
  count: number;
  maxAbs: number;
  sumSqErr: number;
  sumSqRef: number;
  sumSqApprox: number;
  dot: number;
  agreeing: number;
  mismatches: number;
}

/**
 * The sums of each ERROR_BLOCK of (reference, approx), in order: what ErrorAccumulator.add adds.
 * Threads can compute shares of a tensor's blocks and one accumulator add them all in order
 * (addSums) with the bits of a single pass.
 */
export function blockSums(reference: ArrayLike<number>, approx: ArrayLike<number>): BlockSums[] {
  if (reference.length !== approx.length) {
    throw new Error(`error metrics: reference has ${reference.length} elements, approximation ${approx.length}`);
  }
  const out: BlockSums[] = [];
  // In blocks: V8 optimises a function it has entered a few times, while one call over a whole
  // tensor ran its loop unoptimised (~32 ns per element instead of ~5, measured).
  for (let start = 0; start < reference.length; start += BLOCK) out.push(sumsOf(reference, approx, start, Math.min(reference.length, start + BLOCK)));
  return out;
}

function sumsOf(reference: ArrayLike<number>, approx: ArrayLike<number>, from: number, to: number): BlockSums {
  const s: BlockSums = { count: 0, maxAbs: 0, sumSqErr: 0, sumSqRef: 0, sumSqApprox: 0, dot: 0, agreeing: 0, mismatches: 0 };
  // Float32 blocks go through the SIMD sums (two float64 lanes per sum, a fixed order), the
  // few pairs past the last whole vector and any block holding a non-finite error through the loop below.
  if (reference instanceof Float32Array && approx instanceof Float32Array) {
    const simd = simdErrorSums(reference, approx, from, to);
    if (simd !== null) {
      s.maxAbs = simd.maxAbs;
      s.sumSqErr = simd.sumSqErr;
      s.sumSqRef = simd.sumSqRef;
      s.sumSqApprox = simd.sumSqApprox;
      s.dot = simd.dot;
      s.count = simd.count;
      from += simd.count;
    }
  }
  let maxAbs = s.maxAbs;
  let sumSqErr = 0;
  let sumSqRef = 0;
  let sumSqApprox = 0;
  let dot = 0;
  let finite = 0;
  for (let i = from; i < to; i++) {
    const r = reference[i]!;
    const a = approx[i]!;
    const e = r - a;
    if (Number.isFinite(e)) {
      const abs = e < 0 ? -e : e;
      if (abs > maxAbs) maxAbs = abs;
      sumSqErr += e * e;
      sumSqRef += r * r;
      sumSqApprox += a * a;
      dot += r * a;
      finite++;
    } else if (r === a || (r !== r && a !== a)) {
      s.agreeing++;
    } else {
      s.mismatches++;
      maxAbs = Infinity;
    }
  }
  s.maxAbs = maxAbs;
  s.sumSqErr += sumSqErr;
  s.sumSqRef += sumSqRef;
  s.sumSqApprox += sumSqApprox;
  s.dot += dot;
  s.count += finite;
  return s;
}

/** The metrics of a tensor fed in blocks (add, or addSums with blocks computed elsewhere), in order. */
export class ErrorAccumulator {
  private count = 0;
  private maxAbs = 0;
  private sumSqErr = 0;
  private sumSqRef = 0;
  private sumSqApprox = 0;
  private dot = 0;
  private agreeing = 0;
  private mismatches = 0;

  add(reference: ArrayLike<number>, approx: ArrayLike<number>): void {
    for (const s of blockSums(reference, approx)) this.addSums(s);
  }

  /** One block's sums (blockSums), added to the totals; blocks must come in order for the same bits. */
  addSums(s: BlockSums): void {
    this.maxAbs = Math.max(this.maxAbs, s.maxAbs);
    this.sumSqErr += s.sumSqErr;
    this.sumSqRef += s.sumSqRef;
    this.sumSqApprox += s.sumSqApprox;
    this.dot += s.dot;
    this.count += s.count;
    this.agreeing += s.agreeing;
    this.mismatches += s.mismatches;
  }

  result(): ErrorMetrics {
    const { count, sumSqErr, sumSqRef, sumSqApprox, dot } = this;
    const sqnrDb =
      sumSqErr === 0 ? Infinity : sumSqRef === 0 ? -Infinity : 10 * Math.log10(sumSqRef / sumSqErr);
    const norms = Math.sqrt(sumSqRef) * Math.sqrt(sumSqApprox);
    const cosine = sumSqRef === 0 && sumSqApprox === 0 ? 1 : norms === 0 ? 0 : Math.min(1, Math.max(-1, dot / norms));
    return {
      count,
      maxAbsError: this.maxAbs,
      rmse: count === 0 ? 0 : Math.sqrt(sumSqErr / count),
      sqnrDb,
      cosine,
      nonFiniteAgreeing: this.agreeing,
      nonFiniteMismatches: this.mismatches,
    };
  }
}

/** The metrics of two whole arrays. */
export function errorMetrics(reference: ArrayLike<number>, approx: ArrayLike<number>): ErrorMetrics {
  const acc = new ErrorAccumulator();
  acc.add(reference, approx);
  return acc.result();
}
