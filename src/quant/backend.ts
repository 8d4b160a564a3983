/**
 * The Keras backends whose arithmetic kquant reproduces, and what sets them apart on CPU
 * (measured with the real Keras 3.15.1: fixtures/keras/vectors/<backend>/ pins every point).
 * Backends that agree share code: the kernels read one row of this table, never the name.
 */
import { KquantError } from "../errors.js";

/** A Keras backend: KERAS_BACKEND's value. */
export type KerasBackend = "tensorflow" | "torch" | "jax" | "numpy";

/** Every backend kquant reproduces, in the order the golden vectors dedupe them. */
export const KERAS_BACKENDS: readonly KerasBackend[] = ["tensorflow", "torch", "jax", "numpy"];

/** Keras's own default backend, and kquant's. */
export const DEFAULT_BACKEND: KerasBackend = "tensorflow";

/** One backend's row of the table: what its CPU arithmetic does where the backends differ. */
export interface BackendBehaviour {
  /**
   * `x / y` with a broadcast divisor: "exact" IEEE division, or "reciprocal": XLA rewrites it to
   * `x * f32(1 / y)` (jax), which differs in the last bit (grouped int4 scales and values,
   * float8 codes on ties).
   */
  divide: "exact" | "reciprocal";
  /**
   * Flush-to-zero / denormals-are-zero: subnormal operands count as zero and subnormal results
   * become zero (XLA:CPU and TensorFlow's Eigen set both); torch and numpy keep them.
   */
  flushSubnormals: boolean;
  /**
   * float → integer cast of a value outside the integer type: "saturate" to its bounds (XLA,
   * TensorFlow) or "wrap" as C's cast through int32 does (torch, numpy: 300 → 44 in int8).
   */
  intCast: "saturate" | "wrap";
  /** abs_max_quantize with axis=None: keepdims scale of rank n, or a 0-d scale (torch's amax). */
  scalarScaleRank0: boolean;
  /**
   * Whether a cast to uint16 / uint32 exists: torch has neither, and Keras maps them to int32 /
   * int64 (kquant writes int32 for uint16 and refuses uint32).
   */
  wideUnsigned: boolean;
  /**
   * Whether a float → integer cast of a value outside the integer type (NaN included) is the same
   * everywhere: TensorFlow's Eigen saturates it in whole packets (the first 32·⌊n/32⌋ of n int8
   * results, NaN → -128) and wraps it in the scalar tail (NaN → 0), so the bytes depend on where
   * a value sits; kquant refuses what would reach such a cast there.
   */
  outOfRangeCast: boolean;
  /**
   * float32 ⇄ float8 casts: "ml_dtypes" (jax, numpy, tensorflow: e4m3fn overflow and ±Inf → NaN,
   * e5m2 NaN → 0x7e, decoded NaN 0x7fc00000) or "torch" (e4m3fn overflow and ±Inf saturate to
   * ±448, e5m2 NaN → 0x7f, a decoded NaN keeps the code's mantissa as payload, e.g. 0x7ff00000).
   */
  float8Cast: Float8Cast;
  /** jax only: its float16 / bfloat16 → e5m2 convert drops the sign of NaN (every NaN is 0x7f). */
  e5m2NaNUnsignedFrom16: boolean;
  /** The bits of a NaN that a max over a whole tensor returns (torch: all ones), or null: the NaN as found. */
  fullReductionNaN: number | null;
  /** fake_quant_with_min_max_vars: Keras's own ops ("keras") or tf.quantization's kernel ("tensorflow"). */
  fakeQuantKernel: "keras" | "tensorflow";
}

/** Whose float32 ⇄ float8 conversion a backend runs (see BackendBehaviour.float8Cast). */
export type Float8Cast = "ml_dtypes" | "torch";

const BEHAVIOURS: Readonly<Record<KerasBackend, BackendBehaviour>> = {
  tensorflow: {
    divide: "exact",
    flushSubnormals: true,
    intCast: "saturate",
    scalarScaleRank0: false,
    wideUnsigned: true,
    outOfRangeCast: false,
    float8Cast: "ml_dtypes",
    e5m2NaNUnsignedFrom16: false,
    fullReductionNaN: null,
    fakeQuantKernel: "tensorflow",
  },
  jax: {
    divide: "reciprocal",
    flushSubnormals: true,
    intCast: "saturate",
    scalarScaleRank0: false,
    wideUnsigned: true,
    outOfRangeCast: true,
    float8Cast: "ml_dtypes",
    e5m2NaNUnsignedFrom16: true,
    fullReductionNaN: null,
    fakeQuantKernel: "keras",
  },
  torch: {
    divide: "exact",
    flushSubnormals: false,
    intCast: "wrap",
    scalarScaleRank0: true,
    wideUnsigned: false,
    outOfRangeCast: true,
    float8Cast: "torch",
    e5m2NaNUnsignedFrom16: false,
    fullReductionNaN: 0xffffffff,
    fakeQuantKernel: "keras",
  },
  numpy: {
    divide: "exact",
    flushSubnormals: false,
    intCast: "wrap",
    scalarScaleRank0: false,
    wideUnsigned: true,
    outOfRangeCast: true,
    float8Cast: "ml_dtypes",
    e5m2NaNUnsignedFrom16: false,
    fullReductionNaN: null,
    fakeQuantKernel: "keras",
  },
};

/** Whether `name` is one of KERAS_BACKENDS. */
export function isKerasBackend(name: string): name is KerasBackend {
  return (KERAS_BACKENDS as readonly string[]).includes(name);
}

/** The behaviour row of `backend` (default: Keras's default, tensorflow); unknown names are refused. */
export function behaviourOf(backend: KerasBackend | undefined, what = "keras backend"): BackendBehaviour {
  const b = backend ?? DEFAULT_BACKEND;
  if (!isKerasBackend(b)) {
    throw new KquantError(`${what}: unknown Keras backend ${JSON.stringify(b)} (expected one of ${KERAS_BACKENDS.join(", ")})`);
  }
  return BEHAVIOURS[b];
}
