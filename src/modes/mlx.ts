/**
 * MLX's quantization modes (mlx_lm's --q-mode: affine, mxfp4, mxfp8, nvfp4) as descriptors: what
 * `kquant quantize --mlx`, and `inspect` / `verify` / `dequantize` of an MLX folder, ask of a mode,
 * so that none of them tests a mode's name. The arithmetic is src/quant/mlx's (MLX 0.32.4, bit for
 * bit). Adding an MLX mode is its kernels there, a descriptor here and its line in MLX_MODES.
 *
 * Shapes, for a weight w [..., cols] in groups of g along cols:
 *   codes   U32 [..., cols·bits/32]
 *   scales  [..., cols/g], in w's float dtype (`scalesInDtype`) or U8 (E8M0 for mxfp, E4M3 for nvfp4)
 *   biases  [..., cols/g], in w's float dtype, when `biases`
 */
import type { StDType } from "../formats/types.js";
import { mlxAffineDequantize, mlxAffineQuantize, mlxAffineRefusal, type MlxFloatTensor } from "../quant/mlx/affine.js";
import type { Arrays } from "../quant/arrays.js";
import { storeAs, valuesOf, type MlxFloat } from "../quant/mlx/floats.js";
import { MLX_FP_MODES, mlxFpDequantize, mlxFpQuantize, mlxFpRefusal, type MlxFpMode } from "../quant/mlx/fp.js";
import { floatSqnrFloorDb, intSqnrFloorDb } from "./sqnr-floor.js";

/** A float tensor's data: float32 values, or float16 / bfloat16 bit patterns. */
type FloatData = Float32Array | Uint16Array;

/** A quantized weight's stored bytes (scales and biases as their dtype's bytes). */
export interface MlxStored {
  codes: Uint32Array;
  scales: Uint8Array;
  biases?: Uint8Array;
}

/** One MLX quantization mode. */
export interface MlxModeDescriptor {
  /** mlx_lm's --q-mode, config.json's `quantization.mode`. */
  readonly name: string;
  /** mlx_lm's group size and width when --q-group-size / --q-bits are absent. */
  readonly defaults: { readonly groupSize: number; readonly bits: number };
  /** Scales in the weight's float dtype (else U8). */
  readonly scalesInDtype: boolean;
  /** Stores biases (in the weight's float dtype) beside the scales. */
  readonly biases: boolean;
  /** `verify --against`'s default floor (dB) for `bits`-bit codes (sqnr-floor.ts). */
  minSqnrDb(bits: number): number;
  /** MLX's refusal of a width or group size, one line; null when MLX takes them. */
  refusal(bits: number, groupSize: number): string | null;
  /** mx.quantize(w, groupSize, bits, mode) on the CPU, its outputs made by `arrays` (quant/arrays.ts) when given. */
  quantize(w: MlxFloatTensor, bits: number, groupSize: number, arrays?: Arrays): MlxStored;
  /**
   * mx.dequantize back to `out` (its data). `dtype` is the scales' float dtype when
   * `scalesInDtype` (the affine read-back computes in it, then is cast to `out`).
   */
  dequantize(stored: MlxStored, codesShape: readonly number[], dtype: MlxFloat | null, bits: number, groupSize: number, out: MlxFloat): FloatData;
  /** Values MLX never writes in the scales, biases and codes, one line each (`name` of each role). */
  problems(stored: MlxStored, dtype: MlxFloat | null, names: { codes: string; scales: string; biases?: string }): string[];
}

const view = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A float tensor's data from its bytes (copied when they are not aligned). */
export function floatData(bytes: Uint8Array, dtype: MlxFloat): FloatData {
  const own = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return dtype === "float32" ? new Float32Array(own.buffer, own.byteOffset, own.byteLength / 4) : new Uint16Array(own.buffer, own.byteOffset, own.byteLength / 2);
}

const countLine = (role: string, name: string, bad: number, total: number, what: string): string[] =>
  bad > 0 ? [`${role} "${name}": ${bad} of ${total} ${what}`] : [];

const AFFINE: MlxModeDescriptor = {
  name: "affine",
  defaults: { groupSize: 64, bits: 4 },
  scalesInDtype: true,
  biases: true,
  minSqnrDb: intSqnrFloorDb,
  refusal: mlxAffineRefusal,
  quantize(w, bits, groupSize, arrays) {
    const q = mlxAffineQuantize(w, bits, groupSize, arrays);
    return { codes: q.wq, scales: view(q.scales.data), biases: view(q.biases.data) };
  },
  dequantize(stored, codesShape, dtype, bits, groupSize, out) {
    const t = (b: Uint8Array) => ({ dtype: dtype!, shape: [], data: floatData(b, dtype!) });
    const v = mlxAffineDequantize(stored.codes, codesShape, t(stored.scales), t(stored.biases!), bits, groupSize);
    return dtype === out ? v.data : storeAs(valuesOf(v.data, dtype!), out);
  },
  problems(stored, dtype, names) {
    const s = valuesOf(floatData(stored.scales, dtype!), dtype!);
    const b = valuesOf(floatData(stored.biases!, dtype!), dtype!);
    return [
      ...countLine("scales", names.scales, s.filter((v) => !Number.isFinite(v) || v === 0).length, s.length, "value(s) are not finite and non-zero"),
      ...countLine("biases", names.biases!, b.filter((v) => !Number.isFinite(v)).length, b.length, "value(s) are not finite"),
    ];
  },
};

/** mxfp4, mxfp8, nvfp4: fixed width and group, U8 scales (E8M0, or E4M3 for nvfp4), no biases. */
function fpMode(name: MlxFpMode): MlxModeDescriptor {
  const { groupSize, bits } = MLX_FP_MODES[name];
  // E8M0: 255 is NaN. E4M3: 0x7f and 0xff are NaN, and an abs-max scale is never negative.
  const badScale = groupSize === 16 ? (b: number) => (b & 0x7f) === 0x7f || b >= 0x80 : (b: number) => b === 255;
  return {
    name,
    defaults: { groupSize, bits },
    scalesInDtype: false,
    biases: false,
    minSqnrDb: () => floatSqnrFloorDb(bits === 8 ? 8 : 4),
    refusal: (b, g) => mlxFpRefusal(name, b, g),
    quantize(w, _bits, _groupSize, arrays) {
      const q = mlxFpQuantize(w, name, arrays);
      return { codes: q.wq, scales: q.scales };
    },
    dequantize: (stored, codesShape, _dtype, _bits, _group, out) => mlxFpDequantize(stored.codes, codesShape, stored.scales, name, out).data,
    problems(stored, _dtype, names) {
      const out = countLine("scales", names.scales, stored.scales.filter(badScale).length, stored.scales.length, "value(s) are not finite and non-zero");
      if (bits === 8) {
        const codes = view(stored.codes);
        out.push(...countLine("codes", names.codes, codes.filter((b) => (b & 0x7f) === 0x7f).length, codes.length, "codes are NaN"));
      }
      return out;
    },
  };
}

/** The MLX modes, in the order messages list them. */
export const MLX_MODES: readonly MlxModeDescriptor[] = [AFFINE, fpMode("mxfp4"), fpMode("mxfp8"), fpMode("nvfp4")];

/** The MLX mode called `name`, or undefined. */
export function mlxModeNamed(name: string): MlxModeDescriptor | undefined {
  return MLX_MODES.find((m) => m.name === name);
}

/** The stored dtype of a mode's scales for a weight of float `dtype`. */
export function mlxScalesDtype(mode: MlxModeDescriptor, dtype: StDType): StDType {
  return mode.scalesInDtype ? dtype : "U8";
}
