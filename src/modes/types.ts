/**
 * What a quantization mode is, in one place: the descriptor each mode registers (registry.ts).
 * Code outside src/modes asks a mode's descriptor (its capabilities, stored shapes, kernel,
 * read-back, formula, tag) instead of testing its name.
 */
import type { StDType } from "../formats/types.js";
import type { Float32Source } from "../quant/wasm/kernels.js";
import type { QuantSpec } from "../plan/spec.js";
import type { SpecProblem } from "../plan/spec-check.js";
import type { StoredBytes, StoredGeometry, StoredRole } from "../plan/stored.js";
import type { Float8Kind } from "../quant/float8.js";
import type { Tensor } from "../quant/tensor.js";
import type { Mode } from "./registry.js";

/**
 * One tensor (or one row slice of it, quantize/row-split.ts) as a mode's kernel gets it: the
 * canonical spec (non-negative axes), the source shape, the planned stored shapes, and views of
 * the source bytes made on demand (so a kernel pays only for the view it uses).
 */
export interface KernelInput {
  /** The source tensor's name (for messages). */
  name: string;
  spec: QuantSpec;
  /** The source's shape (the slice's, for a row slice). */
  shape: readonly number[];
  /** The planned shape of the stored tensor of `role` (the slice's). */
  storedShape(role: StoredRole): readonly number[];
  /** Count NaN / Inf (they are refused when present). */
  count: boolean;
  /** Where the stored tensors go, each exactly its planned length (else the kernel allocates). */
  into?: StoredBytes;
  /** The source as float32 (F32 in place, others converted into reused scratch; the same array on every call). */
  float32(): Tensor<Float32Array>;
  /** A float16 / bfloat16 source as its bit patterns (kernels that widen them themselves), else null. */
  sixteenBit(): Tensor<Uint16Array> | null;
  /** The source as float32 values or 16-bit patterns (pipeline/float-values.ts float32Source), null for other dtypes. */
  source(): Float32Source | null;
  /** Reused int8 working memory of `n` elements, if the caller keeps some. */
  int8Scratch(n: number): Int8Array | undefined;
}

/** A kernel's answer: the stored bytes by role, and how many NaN / Inf it counted (0 when not counting). */
export interface KernelOutput {
  stored: StoredBytes;
  nonFinite: number;
}

/** What a record says about its codes, for the content checks of `verify`. */
export interface CodeFacts {
  /** The value range the codes must lie in (integer modes; the record's or the mode's default). */
  valueRange?: readonly [number, number];
  packAxis?: number;
  origLen?: number;
  /** The stored values' shape. */
  valuesShape: readonly number[];
}

/**
 * A quantization mode. Shapes: `shape` is the source tensor's; `g`'s axes are non-negative.
 * Stored tensors: values (`valuesDtype`, the source shape with the pack axis halved when
 * `packed`), scale (F32, `scaleShape`), zero (I8, the scale's shape, when `zeroPoint`).
 */
export interface ModeDescriptor {
  /** The name in manifests, recipes and reports. */
  readonly name: Mode;
  /** The quantize flag that selects it (--int8, --int4, --float8). */
  readonly flag: string;
  /** The help of `flag`, given by the mode `flag` chooses by default. */
  readonly flagHelp?: string;
  /** The format names that select it with `flag` (--float8 e5m2), the first one kquant's own. */
  readonly formats?: readonly string[];
  /** Chosen by `flag` when no format is given. */
  readonly flagDefault?: boolean;
  /** The mode `flag` (or this name in a recipe) selects when a block size is given. */
  readonly withBlockSize?: Mode;
  /** Bits per stored value (code width). */
  readonly bits: number;
  /** Integer codes in a value range ("int") or float codes ("float"). */
  readonly kind: "int" | "float";
  /** The range a value range must fit (integer modes). */
  readonly codeRange?: readonly [number, number];
  /** Two codes per byte (Keras's pack_int4) along the pack axis. */
  readonly packed: boolean;
  /** One scale per group of `blockSize` along the axis (2-D tensors only). */
  readonly grouped: boolean;
  /** Stores a zero point beside the scale. */
  readonly zeroPoint: boolean;
  /** The float8 format of the values (float modes). */
  readonly float8?: Float8Kind;
  /** The stored values' dtype. */
  readonly valuesDtype: StDType;
  /** A Keras AbsMaxQuantizer config (a recipe's "keras") can describe it. */
  readonly absMaxQuantizer: boolean;
  /** Its part of the default output name (plan/tag.ts). */
  readonly tag: string;
  /**
   * `verify --against`'s default floor: the least SQNR (dB) a tensor must reach. Well under what
   * abs-max quantization of Gaussian weights gives, above a wrecked tensor (pipeline/read-back/floor.ts).
   */
  readonly minSqnrDb: number;
  /** Keras's defaults, the ones `kquant quantize --<flag>` uses unless told otherwise. */
  defaults(): QuantSpec;
  /** Its own checks of a spec, whatever tensor it meets (the shared ones are plan/spec-check.ts's), or null. */
  specProblem?(spec: QuantSpec): SpecProblem | null;
  /** Why a tensor of `shape` cannot take it with `axis` (canonical), or null. */
  shapeProblem?(shape: readonly number[], axis: number | null): string | null;
  /** The scale's shape (and the zero point's). */
  scaleShape(shape: readonly number[], g: StoredGeometry): number[];
  /** The manifest's `dequantize` text (plan/spec.ts dequantizeFormula). */
  formula(spec: QuantSpec, shape: readonly number[]): string;
  /** A short human description of a spec, for the report. */
  describe(spec: QuantSpec): string;
  /** The kernel: one tensor's (or row slice's) stored bytes. */
  quantize(input: KernelInput): KernelOutput;
  /**
   * Modes whose scale may reduce over the rows (not grouped): the two passes of a row split, with
   * the same bytes as `quantize` on the whole tensor.
   */
  twoPass?: {
    /** The stored scale from the whole tensor's abs-max along the spec's axis. */
    scale(spec: QuantSpec, amax: Float32Array): Float32Array;
    /** The slice's stored values with the whole tensor's scale, into `into` if given. */
    values(input: KernelInput, scale: Float32Array, into?: Uint8Array): Uint8Array;
  };
  /** The stored bytes back to float32 in the source's shape, into `out`. */
  dequantize(shape: readonly number[], g: StoredGeometry, parts: StoredBytes, out: Float32Array): Float32Array;
  /** What is wrong with the stored codes (role, one line each); the scale is checked by the caller. */
  codeProblems(parts: StoredBytes, facts: CodeFacts): [StoredRole, string][];
}
