/**
 * float32 ⇄ float8 codes, bit for bit as ml_dtypes `astype` (and jax on CPU, which agrees) does it:
 * round to nearest, ties to even, sign kept on zeros, NaN and overflow.
 *
 * float8_e4m3fn has no infinity: |x| > 464 (the tie between 448 and the missing 480 goes to 448)
 * and ±inf encode as NaN 0x7f / 0xff. float8_e5m2 overflows to ±inf (|x| ≥ 61440) and encodes
 * every NaN as 0x7e / 0xfe. Decoding gives float32 NaN 0x7fc00000 with the code's sign.
 * torch's casts (`cast: "torch"`) differ there only: e4m3fn overflow and ±Inf saturate to ±448
 * (0x7e), e5m2 NaN encodes as 0x7f, and a decoded NaN keeps the code's mantissa as its payload.
 */
import { KquantError } from "../errors.js";
import type { Float8Cast } from "./backend.js";

export type Float8Kind = "float8_e4m3fn" | "float8_e5m2";

/** ml_dtypes.finfo(kind).max. */
export const FLOAT8_MAX: Readonly<Record<Float8Kind, number>> = Object.freeze({
  float8_e4m3fn: 448,
  float8_e5m2: 57344,
});

interface Float8Format {
  /** float32 mantissa bits dropped by the encoding. */
  shift: number;
  /** Smallest normal magnitude, as float32 bits. */
  minNormalBits: number;
  /** float32 bits of the smallest magnitude that encodes as `overflowCode`. */
  overflowBits: number;
  overflowCode: number;
  nanCode: number;
  /** Rebias: float32 exponent bias minus the format's, placed at the code's exponent field. */
  rebias: number;
  /** Adding this to a magnitude below the smallest normal rounds it to a multiple of the subnormal step. */
  subnormalMagic: number;
  /** 1 / subnormal step. */
  subnormalScale: number;
}

const FORMATS: Record<Float8Kind, Float8Format> = {
  float8_e4m3fn: {
    shift: 20,
    minNormalBits: 0x3c800000, // 2^-6
    overflowBits: 0x43e80001, // just above 464
    overflowCode: 0x7f,
    nanCode: 0x7f,
    rebias: (127 - 7) << 3,
    subnormalMagic: 2 ** (52 - 9),
    subnormalScale: 2 ** 9,
  },
  float8_e5m2: {
    shift: 21,
    minNormalBits: 0x38800000, // 2^-14
    overflowBits: 0x47700000, // 61440, the tie that rounds to even = inf
    overflowCode: 0x7c,
    nanCode: 0x7e,
    rebias: (127 - 15) << 2,
    subnormalMagic: 2 ** (52 - 16),
    subnormalScale: 2 ** 16,
  },
};

const TORCH_FORMATS: Record<Float8Kind, Float8Format> = {
  float8_e4m3fn: { ...FORMATS.float8_e4m3fn, overflowCode: 0x7e },
  float8_e5m2: { ...FORMATS.float8_e5m2, nanCode: 0x7f },
};

/** The format as `cast` encodes it: torch saturates e4m3fn overflow and writes e5m2 NaN as 0x7f. */
function formatFor(kind: Float8Kind, cast: Float8Cast): Float8Format {
  return cast === "torch" ? TORCH_FORMATS[kind] : FORMATS[kind];
}

export function float8Format(kind: string): Float8Kind {
  if (kind === "float8_e4m3fn" || kind === "float8_e5m2") return kind;
  throw new KquantError(`float8: unknown kind ${kind} (expected float8_e4m3fn or float8_e5m2)`);
}

/** Decodes one code to float32 bits, by the format's definition (used to build the tables). */
function decodeBits(code: number, kind: Float8Kind, cast: Float8Cast): number {
  const sign = (code & 0x80) << 24;
  const mag = code & 0x7f;
  const manBits = kind === "float8_e4m3fn" ? 3 : 2;
  const bias = kind === "float8_e4m3fn" ? 7 : 15;
  const exp = mag >>> manBits;
  const man = mag & ((1 << manBits) - 1);
  // torch widens a NaN's mantissa into the float32 payload (quieted); ml_dtypes gives the default NaN.
  const nan = cast === "torch" ? 0x7fc00000 | (man << (23 - manBits)) : 0x7fc00000;
  if (kind === "float8_e4m3fn" && mag === 0x7f) return (sign | nan) >>> 0;
  if (kind === "float8_e5m2" && exp === 31) {
    return (sign | (man === 0 ? 0x7f800000 : nan)) >>> 0;
  }
  const value = exp === 0 ? man * 2 ** (1 - bias - manBits) : (1 + man / (1 << manBits)) * 2 ** (exp - bias);
  const f = new Float32Array([value]);
  return (sign | new Uint32Array(f.buffer)[0]) >>> 0;
}

const decodeLuts = new Map<string, Uint32Array>();

/** float32 bit patterns of all 256 codes, as `cast` decodes them. */
export function float8DecodeTable(kind: Float8Kind, cast: Float8Cast = "ml_dtypes"): Uint32Array {
  let lut = decodeLuts.get(`${kind}/${cast}`);
  if (lut === undefined) {
    lut = new Uint32Array(256);
    for (let c = 0; c < 256; c++) lut[c] = decodeBits(c, kind, cast);
    decodeLuts.set(`${kind}/${cast}`, lut);
  }
  return lut;
}

/** Encodes one float32, given as its bits and its value. */
export function encodeFloat8Bits(bits: number, value: number, kind: Float8Kind, cast: Float8Cast = "ml_dtypes"): number {
  return encodeOne(bits, value, formatFor(kind, cast));
}

function encodeOne(bits: number, value: number, f: Float8Format): number {
  const sign = (bits >>> 24) & 0x80;
  const a = bits & 0x7fffffff;
  if (a > 0x7f800000) return sign | f.nanCode;
  if (a >= f.overflowBits) return sign | f.overflowCode;
  if (a >= f.minNormalBits) {
    const r = a + ((1 << (f.shift - 1)) - 1) + ((a >>> f.shift) & 1);
    return sign | ((r >>> f.shift) - f.rebias);
  }
  const mag = value < 0 ? -value : value;
  return sign | ((mag + f.subnormalMagic - f.subnormalMagic) * f.subnormalScale);
}

/** dst[i] = float8 code of src[i] (`cast`: whose conversion, see the file comment). */
export function encodeFloat8(src: Float32Array, dst: Uint8Array, kind: Float8Kind, cast: Float8Cast = "ml_dtypes"): void {
  if (src.length !== dst.length) {
    throw new KquantError(`float32 → ${kind}: source has ${src.length} elements but destination has ${dst.length}`);
  }
  const f = formatFor(float8Format(kind), cast);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) dst[i] = encodeOne(bits[i], src[i], f);
}

/** dst[i] = float32 value of code src[i] (`cast`: whose conversion, see the file comment). */
export function decodeFloat8(src: Uint8Array, dst: Float32Array, kind: Float8Kind, cast: Float8Cast = "ml_dtypes"): void {
  if (src.length !== dst.length) {
    throw new KquantError(`${kind} → float32: source has ${src.length} elements but destination has ${dst.length}`);
  }
  const lut = float8DecodeTable(float8Format(kind), cast);
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = lut[src[i]];
}
