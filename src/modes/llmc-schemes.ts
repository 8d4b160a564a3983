/**
 * llm-compressor's preset schemes as `kquant quantize --scheme NAME` takes them: one descriptor per
 * data-free preset (model_free_ptq runs it without calibration data), with the compressed-tensors
 * format it writes and the tensors it stores per Linear weight (role → dtype). The arithmetic stays
 * in src/quant/llmc (presets.ts, linear.ts); the names kquant refuses are answered here in one line.
 */
import { KquantError } from "../errors.js";
import type { PlannedTensor, StDType } from "../formats/types.js";
import { bitsOf } from "../formats/dtypes.js";
import type { LlmcDType } from "../quant/llmc/arith.js";
import { llmcFloats } from "../quant/llmc/decompress.js";
import { fp8Value } from "../quant/llmc/qparams.js";
import { floatSqnrFloorDb, intSqnrFloorDb } from "./sqnr-floor.js";
import { e8m0Problem, float8Problem, outsideRange, packedPaddingProblem, scaleProblem } from "./code-checks.js";
import { packedWords } from "../quant/llmc/pack-int32.js";

/** The safetensors dtype of a weight model_free_ptq quantizes, as its torch dtype (the float scales' T). */
export const LLMC_DTYPE_OF: Readonly<Partial<Record<StDType, LlmcDType>>> = { F32: "float32", BF16: "bfloat16", F16: "float16" };
/** A torch float dtype's safetensors name (LLMC_DTYPE_OF's inverse). */
export const ST_DTYPE_OF_LLMC: Readonly<Record<LlmcDType, StDType>> = { float32: "F32", bfloat16: "BF16", float16: "F16" };
import { formatOf, LLMC_PRESETS, type LlmcArgs, type LlmcFormat, type LlmcPreset } from "../quant/llmc/presets.js";

/** What one stored tensor of a scheme holds: its suffix after the module name, and its dtype ("T": the weight's own). */
export interface SchemeStoredTensor {
  suffix: string;
  dtype: StDType | "T";
  /** What the bytes are: codes (possibly packed), scales, a global scale, a zero point, the weight's shape. */
  role: "codes" | "packed-codes" | "scale" | "e8m0-scale" | "fp8-scale" | "global-scale" | "packed-zero-point" | "shape";
}

/** A --scheme: the preset, the format it writes and the tensors of each quantized `M.weight`. */
export interface SchemeDescriptor {
  /** The preset's name (upper case, as PRESET_SCHEMES spells it). */
  readonly name: string;
  readonly preset: LlmcPreset;
  readonly format: LlmcFormat;
  /** The stored tensors of one quantized `M.weight`, in the kernel's order. */
  readonly stored: readonly SchemeStoredTensor[];
  /** How the scales tile the weight, for people: "group 128", "channel", "block 128×128", "group 16". */
  readonly grouping: string;
  /** The codes and scales, for people: "int4 symmetric, group 128, scales in the weight's dtype". */
  readonly describe: string;
  /**
   * `verify --against`'s default floor (SQNR, dB): about 10 dB under what the preset gives on
   * Gaussian weights (measured, docs/llmcompressor.md), so W2's floor cannot tell a wrecked tensor.
   */
  readonly minSqnrDb: number;
  /** Each stored tensor's shape (in `stored`'s order) for a weight [rows, cols]. */
  storedShapes(rows: number, cols: number): number[][];
  /**
   * The tensors a quantized `module.weight` of dtype `t` (F32, BF16, F16), [rows, cols], is written
   * as, in `stored`'s (the kernel's) order: `module.<suffix>`, its dtype ("T": `t`) and shape. Known
   * before the kernel runs, so a shard's header can be planned before its weights are quantized.
   */
  planned(module: string, t: StDType, rows: number, cols: number): PlannedTensor[];
  /**
   * Stored bits per weight of a [rows, cols] weight whose dtype T has `tBits` bits: codes, scales
   * and zero points (NVFP4 4.5, MXFP4 4.25, MXFP8 8.25, W4A16 with a bfloat16 scale 4.125); the
   * per-tensor weight_shape and global scale are not counted.
   */
  bitsPerWeight(rows: number, cols: number, tBits: number): number;
  /**
   * Values model_free_ptq never writes in a weight's stored tensors (their bytes by suffix, of the
   * shapes `storedShapes` gives), one line each naming the tensor: scales not finite and positive
   * (T, FP8, the global scale), E8M0 bytes 0xFF, NaN FP8 codes, int codes outside the width's
   * range, packing bits past the last code, a weight_shape that is not [rows, cols].
   */
  problems(rows: number, cols: number, t: LlmcDType, bytes: ReadonlyMap<string, Uint8Array>, nameOf: (suffix: string) => string): string[];
}

/** The data-free preset to use instead of one that needs calibration data. */
const CLOSEST: Readonly<Record<string, string>> = { FP8: "FP8_DYNAMIC", NVFP4: "NVFP4A16" };

function storedOf(p: LlmcPreset, format: LlmcFormat): SchemeStoredTensor[] {
  const w = p.weights!;
  switch (format) {
    case "pack-quantized":
      return [
        { suffix: "weight_packed", dtype: "I32", role: "packed-codes" },
        { suffix: "weight_scale", dtype: "T", role: "scale" },
        { suffix: "weight_shape", dtype: "I64", role: "shape" },
        ...(w.symmetric ? [] : [{ suffix: "weight_zero_point", dtype: "I32", role: "packed-zero-point" } as const]),
      ];
    case "int-quantized":
      return [{ suffix: "weight", dtype: "I8", role: "codes" }, { suffix: "weight_scale", dtype: "T", role: "scale" }];
    case "float-quantized":
      return [{ suffix: "weight", dtype: "F8_E4M3", role: "codes" }, { suffix: "weight_scale", dtype: "T", role: "scale" }];
    case "nvfp4-pack-quantized":
      return [
        { suffix: "weight_global_scale", dtype: "F32", role: "global-scale" },
        { suffix: "weight_packed", dtype: "U8", role: "packed-codes" },
        { suffix: "weight_scale", dtype: "F8_E4M3", role: "fp8-scale" },
      ];
    case "mxfp4-pack-quantized":
      return [{ suffix: "weight_packed", dtype: "U8", role: "packed-codes" }, { suffix: "weight_scale", dtype: "U8", role: "e8m0-scale" }];
    case "mxfp8-quantized":
      return [{ suffix: "weight", dtype: "F8_E4M3", role: "codes" }, { suffix: "weight_scale", dtype: "U8", role: "e8m0-scale" }];
    default:
      throw new KquantError(`llm-compressor scheme ${p.name}: format ${format} is not one kquant writes`);
  }
}

/** The scale's [rows, cols] for a weight [rows, cols] (linear.ts groupingOf tiles it the same way). */
function scaleShapeOf(w: LlmcArgs, rows: number, cols: number): [number, number] {
  if (w.strategy === "channel") return [rows, 1];
  if (w.strategy === "block") return [Math.ceil(rows / w.blockStructure![0]), Math.ceil(cols / w.blockStructure![1])];
  return [rows, cols / w.groupSize!];
}

function shapeOf(w: LlmcArgs, role: SchemeStoredTensor["role"], rows: number, cols: number): number[] {
  const [sr, sc] = scaleShapeOf(w, rows, cols);
  switch (role) {
    case "codes":
      return [rows, cols];
    case "packed-codes":
      return w.type === "int" ? [rows, packedWords(cols, w.numBits)] : [rows, cols / 2];
    case "scale":
    case "e8m0-scale":
    case "fp8-scale":
      return [sr, sc];
    case "packed-zero-point":
      return [packedWords(sr, w.numBits), sc];
    case "global-scale":
      return [1];
    case "shape":
      return [2];
  }
}

const int32s = (b: Uint8Array) => {
  const a = b.byteOffset % 4 === 0 ? b : b.slice();
  return new Int32Array(a.buffer, a.byteOffset, a.byteLength / 4);
};

/** The content checks of one stored tensor of `role` (see SchemeDescriptor.problems), or null. */
function roleProblem(w: LlmcArgs, role: SchemeStoredTensor["role"], dtype: StDType | "T", b: Uint8Array, shape: number[], rows: number, cols: number, t: LlmcDType): string | null {
  switch (role) {
    case "scale":
      return scaleProblem(llmcFloats(b, t));
    case "fp8-scale":
      return scaleProblem(Float32Array.from(b, fp8Value));
    case "global-scale":
      return scaleProblem(llmcFloats(b, "float32"));
    case "e8m0-scale":
      return e8m0Problem(b);
    case "codes":
      if (dtype === "F8_E4M3") return float8Problem(b, "float8_e4m3fn");
      return outsideRange(new Int8Array(b.buffer, b.byteOffset, b.byteLength), -(2 ** (w.numBits - 1)), 2 ** (w.numBits - 1) - 1);
    case "packed-codes":
      return w.type === "int" ? packedPaddingProblem(int32s(b), rows, cols, w.numBits) : null; // every E2M1 nibble is a value
    case "packed-zero-point": {
      // packed along dim 0: each column of [words, groups] holds the zero points of one group column
      const words = int32s(b);
      const [per, groups] = [shape[0]!, shape[1]!];
      const byColumn = new Int32Array(groups * per);
      for (let i = 0; i < per; i++) for (let c = 0; c < groups; c++) byColumn[c * per + i] = words[i * groups + c]!;
      return packedPaddingProblem(byColumn, groups, scaleShapeOf(w, rows, cols)[0], w.numBits);
    }
    case "shape": {
      const v = new BigInt64Array(b.slice().buffer);
      return v[0] === BigInt(rows) && v[1] === BigInt(cols) ? null : `holds [${v.join(", ")}], the weight is [${rows}, ${cols}]`;
    }
  }
}

function floorOf(w: LlmcArgs): number {
  return w.type === "int" ? intSqnrFloorDb(w.numBits) : floatSqnrFloorDb(w.numBits === 8 ? 8 : 4);
}

function describeText(w: LlmcArgs, format: LlmcFormat): string {
  const codes = w.type === "int" ? `int${w.numBits} ${w.symmetric ? "symmetric" : "asymmetric"}` : w.numBits === 8 ? "FP8 E4M3" : "FP4 E2M1";
  const scales = w.scaleDtype === "uint8" ? "E8M0 scales" : format === "nvfp4-pack-quantized" ? "FP8 E4M3 scales over a float32 global scale" : "scales in the weight's dtype";
  return `${codes}, ${groupingText(w)}, ${scales}`;
}

function groupingText(w: LlmcArgs): string {
  if (w.strategy === "channel") return "channel";
  if (w.strategy === "block") return `block ${w.blockStructure!.join("×")}`;
  return `group ${w.groupSize}`;
}

/** Every data-free preset's descriptor, in PRESET_SCHEMES' order. */
const SCHEMES: readonly SchemeDescriptor[] = LLMC_PRESETS.filter((p) => p.refusal === null).map((preset) => {
  const format = formatOf(preset);
  const w = preset.weights!;
  const stored = Object.freeze(storedOf(preset, format));
  const storedShapes = (rows: number, cols: number) => stored.map((t) => shapeOf(w, t.role, rows, cols));
  return Object.freeze({
    name: preset.name,
    preset,
    format,
    stored,
    grouping: groupingText(w),
    describe: describeText(w, format),
    minSqnrDb: floorOf(w),
    storedShapes,
    planned(module: string, t: StDType, rows: number, cols: number): PlannedTensor[] {
      const shapes = storedShapes(rows, cols);
      return stored.map((x, i) => ({ name: `${module}.${x.suffix}`, dtype: x.dtype === "T" ? t : x.dtype, shape: shapes[i]! }));
    },
    problems(rows: number, cols: number, t: LlmcDType, bytes: ReadonlyMap<string, Uint8Array>, nameOf: (suffix: string) => string): string[] {
      const shapes = storedShapes(rows, cols);
      return stored.flatMap((x, i) => {
        const b = bytes.get(x.suffix);
        const p = b === undefined ? null : roleProblem(w, x.role, x.dtype, b, shapes[i]!, rows, cols, t);
        return p === null ? [] : [`${x.role} tensor "${nameOf(x.suffix)}": ${p}`];
      });
    },
    bitsPerWeight(rows: number, cols: number, tBits: number): number {
      const shapes = storedShapes(rows, cols);
      const bits = stored.reduce((n, t, i) => (t.role === "shape" || t.role === "global-scale" ? n : n + shapes[i]!.reduce((a, b) => a * b, 1) * (t.dtype === "T" ? tBits : bitsOf(t.dtype))), 0);
      return bits / (rows * cols);
    },
  });
});

/** The names --scheme takes (any case), in PRESET_SCHEMES' order. */
export const SCHEME_NAMES: readonly string[] = SCHEMES.map((s) => s.name);

/**
 * The descriptor of --scheme `name` (any case). Refused in one line: an unknown name (listing the
 * known ones), a preset that needs calibration data (naming the closest data-free one), UNQUANTIZED.
 */
export function schemeNamed(name: string): SchemeDescriptor {
  const upper = name.toUpperCase();
  const found = SCHEMES.find((s) => s.name === upper);
  if (found !== undefined) return found;
  const option = `--scheme ${name}`;
  const preset = LLMC_PRESETS.find((p) => p.name === upper);
  if (preset === undefined) throw new KquantError({ file: option, what: "unknown scheme", hint: `known: ${schemeList()}` });
  const closest = CLOSEST[upper];
  if (closest !== undefined) {
    throw new KquantError({ file: option, what: "its static activation scales need calibration data", hint: `the closest data-free scheme is ${closest}` });
  }
  throw new KquantError({ file: option, what: preset.refusal! });
}

/** SCHEME_NAMES in one short line: the WxAy presets as ranges per activation width (W2…W7A8), then the others. */
export function schemeList(): string {
  const byA = new Map<string, number[]>();
  const rest: string[] = [];
  for (const n of SCHEME_NAMES) {
    const m = /^W(\d)A(\d+)$/.exec(n);
    if (m === null) rest.push(n);
    else byA.set(m[2]!, [...(byA.get(m[2]!) ?? []), Number(m[1])]);
  }
  const ranges = [...byA].sort(([a], [b]) => Number(a) - Number(b)).map(([a, unsorted]) => {
    const ws = unsorted.sort((x, y) => x - y);
    const contiguous = ws.every((w, i) => i === 0 || w === ws[i - 1]! + 1);
    return ws.length > 2 && contiguous ? `W${ws[0]}…W${ws.at(-1)}A${a}` : ws.map((w) => `W${w}A${a}`).join(", ");
  });
  return [...ranges, ...rest].join(", ");
}
