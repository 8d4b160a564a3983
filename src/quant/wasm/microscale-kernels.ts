/**
 * The JS driver of the microscaling formats' SIMD kernels (compressed-tensors NVFP4 / MXFP4 /
 * MXFP8, MLX nvfp4 / mxfp4 / mxfp8): groups of 16 or 32 consecutive values, each with its own
 * scale, every step on one copy of each block of whole groups in the module's memory — the
 * groups' min and max (module.ts's minmax_groups, no flush), their scale byte and divisor
 * (microscale-module.ts), the codes (codes-module.ts) and, for fp4, the codes packed two per
 * byte (pack_pairs). As kernels.ts's drivers, it returns false where it does not apply (no SIMD,
 * a group holding NaN or ±Inf) and callers keep their scalar loops, which compute the same bits.
 */
import { codesName, type CodeKind, type CodeRound } from "./codes-module.js";
import { scalesName, type ScaleKind } from "./microscale-module.js";
import { CHUNK, H, OUT, PK, S, X, Z8, forEachBlock, lengthOf, simdFlushing, type Float32Source } from "./kernels.js";

/** What simdMicroscale computes: the scale kernel, the code kernel, the dtype rounding both use, and the scale kernel's parameter. */
export interface MicroscaleSpec {
  scales: ScaleKind;
  /** The codes: "fp4" / "fp8" (compressed-tensors, torch's casts), "mlxfp4" / "mlxnvfp4" / "fp8" (MLX). */
  codes: Extract<CodeKind, "fp4" | "fp8" | "mlxfp4" | "mlxnvfp4">;
  /** The rounding of the scale computation (the weight's dtype). */
  round: CodeRound;
  /** The rounding of the quotients x / divisor (NVFP4 divides in float32 whatever the dtype). */
  codesRound: CodeRound;
  /** llmc_nv: the global scale; llmc_mx: the E8M0 offset (2 or 8); mlx_mx: 6 or 448; mlx_nv: unused. */
  param: number;
}

/**
 * Each group of `len` (16 or 32) consecutive values of `src`: its scale byte into
 * `scaleBytes[group]`, its values' codes into `codes` — one byte per value (fp8), or two 4-bit
 * codes per byte, the first in the low nibble (fp4: `codes.length` is half the values). False if
 * not handled (no SIMD, len not 16 or 32, lengths that do not match) or if some group holds NaN
 * or ±Inf: then `codes` and `scaleBytes` are partly written, and the scalar loops decide.
 */
export function simdMicroscale(spec: MicroscaleSpec, src: Float32Source, len: number, codes: Uint8Array, scaleBytes: Uint8Array): boolean {
  const k = simdFlushing(false);
  const n = lengthOf(src);
  const packed = spec.codes !== "fp8";
  if (k === null || (len !== 16 && len !== 32) || n % len !== 0 || scaleBytes.length !== n / len || codes.length !== (packed ? n / 2 : n)) return false;
  const scale = k.e[scalesName(spec.scales, spec.round)]!;
  const code = k.e[codesName(spec.codes, spec.codesRound)]!;
  const z8 = new Uint8Array(k.z8.buffer, k.z8.byteOffset, CHUNK);
  let finite = true;
  forEachBlock(k, src, len, (start, blockLen, runs) => {
    if (!finite) return;
    k.e.minmax_groups(X, S, H, runs, len, len);
    const padded = (runs + 3) & ~3;
    k.s.fill(0, runs, padded);
    k.h.fill(0, runs, padded);
    if (scale(S, H, runs, Z8, spec.param) !== 0) {
      finite = false;
      return;
    }
    code(X, S, H, OUT, runs, len, 0, 0, 0);
    scaleBytes.set(z8.subarray(0, runs), start / len);
    if (packed) {
      k.e.pack_pairs(OUT, PK, blockLen / 2);
      codes.set(k.pk.subarray(0, blockLen / 2), start / 2);
    } else {
      codes.set(k.outU8.subarray(0, blockLen), start);
    }
  });
  return finite;
}
