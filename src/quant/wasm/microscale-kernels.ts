/**
 * The JS drivers of the per-group formats' SIMD kernels (compressed-tensors NVFP4 / MXFP4 /
 * MXFP8, MLX nvfp4 / mxfp4 / mxfp8; MLX affine and compressed-tensors' int presets, whose groups
 * also carry a zero point or bias; FP8 per channel or group):
 * every step on one copy of each block of whole groups in the module's memory — the groups' min
 * and max (module.ts's minmax_groups, no flush), their scale (microscale-module.ts), the codes
 * (codes-module.ts) and, for 4-bit codes, the codes packed two per byte (pack_pairs). As
 * kernels.ts's drivers, they return false where they do not apply (no SIMD, a group holding NaN
 * or ±Inf) and callers keep their scalar loops, which compute the same bits.
 */
import { codesName, type CodeKind, type CodeRound } from "./codes-module.js";
import { scalesName, type ScaleKind } from "./microscale-module.js";
import { CHUNK, H, OUT, PK, S, X, Z8, forEachBlock, lengthOf, simdFlushing, type Float32Source, type Kernels } from "./kernels.js";

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
  const packed = spec.codes !== "fp8";
  const n = lengthOf(src);
  if ((len !== 16 && len !== 32) || n % len !== 0 || scaleBytes.length !== n / len || codes.length !== (packed ? n / 2 : n)) return false;
  return groupBlocks(src, len, scalesName(spec.scales, spec.round), spec.param, codesName(spec.codes, spec.codesRound), [0, 0, 0], packed, codes, (k, start, runs) => {
    scaleBytes.set(new Uint8Array(k.z8.buffer, k.z8.byteOffset, runs), start / len);
  });
}

/**
 * mx.quantize's affine mode (mlx/affine.ts) on each group of `len` (32, 64 or 128) consecutive
 * values of `src`: its float32 scale and bias into scales / biases[group], its codes (0..2^bits −
 * 1) into `codes`, one byte per value, or with `packed` (4 bits) two per byte, the first in the
 * low nibble. False if not handled (no SIMD, lengths that do not match) or if some group holds NaN
 * or ±Inf (whose min / max MLX skips): the outputs are then partly written, and the scalar loops decide.
 */
export function simdAffine(src: Float32Source, len: number, bits: number, packed: boolean, codes: Uint8Array, scales: Float32Array, biases: Float32Array): boolean {
  const n = lengthOf(src);
  if (len % 16 !== 0 || n % len !== 0 || scales.length !== n / len || biases.length !== n / len || codes.length !== (packed ? n / 2 : n)) return false;
  const nBins = 2 ** bits - 1;
  return groupBlocks(src, len, scalesName("mlx_affine", "f32"), nBins, codesName("affine", "f32"), [0, nBins, 0], packed, codes, (k, start, runs) => {
    scales.set(k.s.subarray(0, runs), start / len);
    biases.set(k.h.subarray(0, runs), start / len);
  });
}

/** What simdGroupedInt computes: the scale kernel and its parameter, the codes, and the int codes' clamp and byte offset. */
export interface GroupedSpec {
  /** llmc_sym: p the range's half width ((2^b − 1) / 2, or 448 for FP8); llmc_asym: p = 2^b − 1. */
  scales: Extract<ScaleKind, "llmc_sym" | "llmc_asym">;
  codes: Extract<CodeKind, "int" | "fp8">;
  /** The weight dtype's rounding, of the scales and the codes. */
  round: CodeRound;
  param: number;
  /** int: the clamp bounds and the byte offset added to each code (codes-module.ts). */
  qmin: number;
  qmax: number;
  offset: number;
}

/**
 * compressed-tensors' int presets and FP8 per channel or group (linear.ts) on each group of `len`
 * consecutive values of `src` (len a multiple of 16): its scale in T (as float32, what the values
 * are divided by, a zero scale already T's eps) into scales[group], its zero point into
 * zeros[group] (asymmetric only; null otherwise), its values' codes into `codes`, one byte per
 * value (int: + offset, wrapping), or with `packed` two 4-bit codes per byte, the first in the
 * low nibble. False if not handled (no SIMD, lengths that do not match) or if some group holds
 * NaN or ±Inf: the outputs are then partly written, and the scalar loops decide.
 */
export function simdGroupedInt(spec: GroupedSpec, src: Float32Source, len: number, packed: boolean, codes: Uint8Array, scales: Float32Array, zeros: Int8Array | null): boolean {
  const n = lengthOf(src);
  if (len % 16 !== 0 || n % len !== 0 || scales.length !== n / len || (zeros !== null && zeros.length !== n / len) || codes.length !== (packed ? n / 2 : n)) return false;
  return groupBlocks(src, len, scalesName(spec.scales, spec.round), spec.param, codesName(spec.codes, spec.round), [spec.qmin, spec.qmax, spec.offset], packed, codes, (k, start, runs) => {
    scales.set(k.s.subarray(0, runs), start / len);
    zeros?.set(k.z8.subarray(0, runs), start / len);
  });
}

/**
 * The block loop the drivers share: per block of whole groups, their min / max (minmax_groups),
 * the scale kernel `scale(S, H, runs, Z8, param)` (false as soon as it reports NaN or ±Inf), the
 * code kernel `code` with `codeArgs` (qmin, qmax, offset: the int and affine clamps), the codes
 * (packed, or not) into `codes`, and `each` to read the block's scales out of the windows.
 */
function groupBlocks(
  src: Float32Source,
  len: number,
  scale: string,
  param: number,
  code: string,
  codeArgs: readonly [number, number, number],
  packed: boolean,
  codes: Uint8Array,
  each: (k: Kernels, start: number, runs: number) => void,
): boolean {
  const k = simdFlushing(false);
  if (k === null || len > CHUNK) return false;
  const scaleFn = k.e[scale as `scales_${string}`]!;
  const codeFn = k.e[code as `codes_${string}`]!;
  let finite = true;
  forEachBlock(k, src, len, (start, blockLen, runs) => {
    if (!finite) return;
    k.e.minmax_groups(X, S, H, runs, len, len);
    const padded = (runs + 3) & ~3;
    k.s.fill(0, runs, padded);
    k.h.fill(0, runs, padded);
    if (scaleFn(S, H, runs, Z8, param) !== 0) {
      finite = false;
      return;
    }
    codeFn(X, S, H, OUT, runs, len, ...codeArgs);
    each(k, start, runs);
    if (packed) {
      k.e.pack_pairs(OUT, PK, blockLen / 2);
      codes.set(k.pk.subarray(0, blockLen / 2), start / 2);
    } else {
      codes.set(k.outU8.subarray(0, blockLen), start);
    }
  });
  return finite;
}
