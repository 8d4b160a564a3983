/**
 * kquant as a library: Keras 3's quantizer utilities (keras.quantizers) over typed arrays,
 * bit-exact with Keras on float32 data, and the readers/writers and pipeline the CLI uses.
 */
export type { DType, Tensor, TypedArray } from "./quant/tensor.js";
export { KquantError } from "./errors.js";

// keras.quantizers, on the Keras backend of your choice (default tensorflow, Keras's default)
export { KERAS_BACKENDS, DEFAULT_BACKEND, isKerasBackend } from "./quant/backend.js";
export type { KerasBackend } from "./quant/backend.js";
export { absMaxQuantize } from "./quant/absmax.js";
export { absMaxQuantizeGroupedWithZeroPoint } from "./quant/grouped.js";
export { packInt4, unpackInt4 } from "./quant/int4.js";
export { quantizeDenseKernel, KERAS_INT4_BLOCK_SIZE, type DenseQuantMode, type DenseQuantOptions, type DenseQuantVariables } from "./quant/dense.js";
export { computeFloat8Scale, computeFloat8AmaxHistory, quantizeAndDequantize } from "./quant/float8-scale.js";
export { fakeQuantWithMinMaxVars } from "./quant/fake-quant.js";
export { Quantizer, AbsMaxQuantizer, serialize, deserialize, get } from "./quant/quantizer.js";
export type { AbsMaxQuantizerOptions, QuantizerConfig, SerializedQuantizer } from "./quant/quantizer.js";

// Building blocks: dtype conversion, float8 codes, reductions.
export { toFloat32, fromFloat32 } from "./quant/convert.js";
export { encodeFloat8, decodeFloat8, FLOAT8_MAX } from "./quant/float8.js";
export type { Float8Kind } from "./quant/float8.js";
export { normalizeAxes } from "./quant/axes.js";
export { absMaxAlong } from "./quant/absmax-along.js";

// Files and the quantize pipeline.
export { openTensors } from "./formats/open.js";
export type { PlannedTensor, StDType, TensorInfo, TensorReader } from "./formats/types.js";
export { createSafetensorsWriter, writeShardIndex } from "./formats/safetensors-writer.js";
export { writeNpy } from "./formats/npy.js";
export { writeNpz } from "./formats/npz.js";
export { runQuantize } from "./pipeline/quantize/run-quantize.js";
export { mergeIndex } from "./pipeline/quantize/merge-index.js";
export type { QuantizeJob, QuantizeReport } from "./pipeline/quantize/run-quantize.js";
export { manifestFromMetadata } from "./pipeline/manifest.js";
export type { Manifest, TensorRecord } from "./pipeline/manifest.js";
export { VERSION, KERAS_VERSION } from "./version.js";
