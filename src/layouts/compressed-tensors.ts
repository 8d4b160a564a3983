/**
 * `--layout compressed-tensors`: what transformers (and vLLM) load with `quant_method:
 * compressed-tensors`, as compressed-tensors 0.20.0 reads it (compressors/naive_quantized,
 * compressors/pack_quantized, quantization/lifecycle/forward_helpers.py). For a Linear weight
 * `X.weight` of shape [out, in], quantized per output channel (kquant axis -1) or in groups
 * along `in`:
 *
 *   --int8               int-quantized   X.weight I8 [out, in], X.weight_scale F32 [out, 1] = f32(1/s)
 *   --int4               pack-quantized  X.weight_packed I32 [out, ceil(in/8)], X.weight_scale
 *                                        F32 [out, 1] = f32(1/s), X.weight_shape I64 [2]
 *   --int4 --block-size  pack-quantized  X.weight_packed, X.weight_scale F32 [out, in/g] = s,
 *                                        X.weight_zero_point I32 [ceil(out/8), in/g], X.weight_shape
 *   --float8 e4m3        float-quantized X.weight F8_E4M3, X.weight_scale F32 [1] (or [out, 1]) = s
 *
 * Its symmetric scale multiplies (x = q · scale) where kquant's divides (x = q / s), hence the
 * reciprocal; Keras's own dequantize of a broadcast scale multiplies by that same f32(1/s), so
 * the loaded weight is Keras's bit for bit. Packed codes are q + 8, eight per int32 word, the
 * first in the lowest nibble; zero points are packed the same way along dim 0 (pack_to_int32's
 * packed_dim=0). Embeddings and lm_head stay float and are listed in `ignore`, as is every
 * Linear left float. compressed-tensors stores float8 only as e4m3 (QuantizationArgs.pytorch_dtype).
 */
import { KquantError } from "../errors.js";
import { modeNamed } from "../modes/registry.js";
import type { QuantSpec } from "../plan/spec.js";
import type { StoredGeometry } from "../plan/stored.js";
import { decodeFloat8 } from "../quant/float8.js";
import { bytesOfF32, f32Of, i64Bytes, isEmbeddingOrHead, moduleOf, reciprocals } from "./bytes.js";
import { offsetCodes, packRows, transposeCodes, transposeWords, unpackRows, unsignedCodes, wordsPerRow } from "./codes.js";
import type { Layout, LayoutTensor, SourceTensor, WrittenTensor } from "./layout.js";

type Format = "int-quantized" | "pack-quantized" | "float-quantized";

const isFloat = (g: Pick<QuantSpec, "mode">): boolean => modeNamed(g.mode).kind === "float";
const isPacked = (g: Pick<QuantSpec, "mode">): boolean => modeNamed(g.mode).packed;

function formatOf(spec: Pick<QuantSpec, "mode">): Format {
  if (isFloat(spec)) return "float-quantized";
  return isPacked(spec) ? "pack-quantized" : "int-quantized";
}

/** The spec this format needs for a Linear weight, or why it stays float. */
function adapt(source: SourceTensor & { file?: string }, spec: QuantSpec): QuantSpec | string {
  const float8 = modeNamed(spec.mode).float8;
  if (float8 !== undefined && float8 !== "float8_e4m3fn") {
    throw new KquantError(
      `${source.file ?? ""}: tensor "${source.name}": --layout compressed-tensors stores float8 weights as e4m3 only (compressed-tensors 0.20: num_bits 8 float is F8_E4M3); use --float8 e4m3`,
    );
  }
  if (!source.name.endsWith(".weight")) return "only Linear weights (X.weight) are quantized";
  if (source.shape.length !== 2) return `only 2-D [out, in] Linear weights are quantized, this is [${source.shape}]`;
  if (isEmbeddingOrHead(source.name)) return "embeddings and lm_head stay float (listed in ignore)";
  const inFeatures = source.shape[1]!;
  if (modeNamed(spec.mode).grouped && inFeatures % spec.blockSize! !== 0) {
    return `group size ${spec.blockSize} does not divide in_features ${inFeatures}`;
  }
  if (isFloat(spec)) return { ...spec, axis: spec.axis === null ? null : 1 };
  // Per output channel (a scale per row of [out, in]) or groups along `in`; int4 packed along `in`.
  return { ...spec, axis: 1, ...(isPacked(spec) ? { packAxis: 1 } : {}) };
}

function checkGeometry(source: SourceTensor, g: StoredGeometry): void {
  const ok = source.shape.length === 2 && (isFloat(g) ? g.axis === null || g.axis === 1 : g.axis === 1 && (!isPacked(g) || g.packAxis === 1));
  if (!ok) throw new KquantError(`tensor "${source.name}": axis ${g.axis} of shape [${source.shape}] is not a layout compressed-tensors holds`);
}

function written(source: SourceTensor, g: StoredGeometry): WrittenTensor[] {
  checkGeometry(source, g);
  const base = moduleOf(source.name);
  const [out, inF] = source.shape as [number, number];
  const reciprocal = (s: { scale: Uint8Array }) => bytesOfF32(reciprocals(f32Of(s.scale)));
  const shape: WrittenTensor = { name: `${base}.weight_shape`, dtype: "I64", shape: [2], encode: () => i64Bytes([out, inF]) };
  const packed: WrittenTensor = {
    name: `${base}.weight_packed`,
    dtype: "I32",
    shape: [out, wordsPerRow(inF, 4)],
    encode: (s) => packRows(unsignedCodes(s.values, out, inF, 4), 4),
  };
  const scale: WrittenTensor = { name: `${base}.weight_scale`, dtype: "F32", shape: [out, 1], encode: reciprocal };
  const mode = modeNamed(g.mode);
  if (mode.kind === "float") {
    return [
      { name: `${base}.weight`, dtype: "F8_E4M3", shape: [out, inF], from: "values" },
      { name: `${base}.weight_scale`, dtype: "F32", shape: g.axis === null ? [1] : [out, 1], from: "scale" },
    ];
  }
  if (!mode.packed) return [{ name: `${base}.weight`, dtype: "I8", shape: [out, inF], from: "values" }, scale];
  if (!mode.zeroPoint) return [packed, scale, shape];
  const groups = inF / g.blockSize!;
  return [
    packed,
    { name: `${base}.weight_scale`, dtype: "F32", shape: [out, groups], from: "scale" },
    {
      name: `${base}.weight_zero_point`,
      dtype: "I32",
      shape: [wordsPerRow(out, 4), groups],
      encode: (s) => transposeWords(packRows(transposeCodes(offsetCodes(s.zero!, out, groups, 4)), 4), groups, wordsPerRow(out, 4)),
    },
    shape,
  ];
}

/**
 * What compressed-tensors' decompression computes, in float32: (q - zero) · scale, the scale
 * broadcast per row or group. One pass per row straight from the written bytes (int4 nibbles
 * unpacked in the same loop), the row's scale and zero looked up once per row or group.
 */
function dequantize(source: SourceTensor, g: StoredGeometry, bytes: ReadonlyMap<string, Uint8Array>): Float32Array {
  checkGeometry(source, g);
  const base = moduleOf(source.name);
  const [out, inF] = source.shape as [number, number];
  const get = (suffix: string) => bytes.get(`${base}.${suffix}`)!;
  const scale = f32Of(get("weight_scale"));
  const x = new Float32Array(out * inF);
  if (isFloat(g)) {
    decodeFloat8(get("weight"), x, "float8_e4m3fn");
    for (let r = 0; r < out; r++) {
      const s = scale[g.axis === null ? 0 : r]!;
      for (let i = r * inF, end = i + inF; i < end; i++) x[i] = x[i]! * s;
    }
    return x;
  }
  if (!isPacked(g)) {
    const w = get("weight");
    const q = new Int8Array(w.buffer, w.byteOffset, w.byteLength);
    for (let r = 0; r < out; r++) {
      const s = scale[r]!;
      for (let i = r * inF, end = i + inF; i < end; i++) x[i] = q[i]! * s;
    }
    return x;
  }
  // int4: codes q + 8, eight per little-endian int32 word, two per byte, the first in the low nibble.
  const packed = get("weight_packed");
  const rowBytes = wordsPerRow(inF, 4) * 4;
  const grouped = modeNamed(g.mode).zeroPoint;
  const groups = grouped ? inF / g.blockSize! : 1;
  const z = grouped ? transposeCodes(unpackRows(transposeWords(get("weight_zero_point"), wordsPerRow(out, 4), groups), groups, out, 4)).u : null;
  for (let r = 0; r < out; r++) {
    const row = r * rowBytes;
    const o = r * inF;
    for (let k = 0; k < groups; k++) {
      const j = r * groups + k;
      const s = scale[grouped ? j : r]!;
      // (u - 8) - (zu - 8) = u - zu for groups; u - 8 per channel.
      const offset = z ? z[j]! : 8;
      const from = grouped ? k * g.blockSize! : 0;
      const to = grouped ? from + g.blockSize! : inF;
      for (let c = from; c < to; c++) x[o + c] = (((packed[row + (c >> 1)]! >> ((c & 1) << 2)) & 0x0f) - offset) * s;
    }
  }
  return x;
}

/** compressed-tensors' QuantizationArgs for a spec. */
function weightArgs(spec: QuantSpec): Record<string, unknown> {
  const mode = modeNamed(spec.mode);
  const grouped = mode.grouped;
  return {
    num_bits: mode.bits,
    type: mode.kind,
    symmetric: !grouped,
    group_size: grouped ? spec.blockSize! : null,
    strategy: grouped ? "group" : spec.axis === null ? "tensor" : "channel",
    block_structure: null,
    dynamic: false,
    actorder: null,
    observer: "minmax",
    observer_kwargs: {},
  };
}

/**
 * The output heads a model shares with its embeddings (transformers' tie_word_embeddings, true
 * unless the config says false): `lm_head` when the checkpoint holds no `lm_head.weight`.
 */
function tiedHeads(cfg: Readonly<Record<string, unknown>>, tensors: readonly LayoutTensor[]): string[] {
  const tied = cfg.tie_word_embeddings !== false;
  const hasHead = tensors.some((t) => /(^|\.)lm_head\.weight$/.test(t.name));
  return tied && !hasHead ? ["lm_head"] : [];
}

/** config.json with `quantization_config`: one config group per distinct scheme, every float Linear in `ignore`. */
function config(cfg: Readonly<Record<string, unknown>>, tensors: readonly LayoutTensor[]): Record<string, unknown> {
  const groups = new Map<string, { format: Format; weights: Record<string, unknown>; modules: string[] }>();
  const ignore: string[] = [];
  for (const t of tensors) {
    if (!t.name.endsWith(".weight") || t.shape.length !== 2) continue;
    if (t.spec === null) {
      ignore.push(moduleOf(t.name));
      continue;
    }
    const weights = weightArgs(t.spec);
    const key = JSON.stringify(weights);
    const group = groups.get(key) ?? { format: formatOf(t.spec), weights, modules: [] };
    group.modules.push(moduleOf(t.name));
    groups.set(key, group);
  }
  // A tied (shared) output head has no tensor of its own, yet the model has an lm_head Linear: not
  // ignored, transformers would quantize it, find no weight_scale and initialise it anew.
  for (const head of tiedHeads(cfg, tensors)) if (!ignore.includes(head)) ignore.push(head);
  const list = [...groups.values()];
  if (list.length === 0) throw new KquantError("--layout compressed-tensors: no Linear weight is quantized, so there is no quantization_config to write");
  const formats = new Set(list.map((g) => g.format));
  const format = formats.size === 1 ? list[0]!.format : "mixed-precision";
  const configGroups = Object.fromEntries(
    list.map((g, i) => [
      `group_${i}`,
      {
        // One scheme: every Linear not ignored. Several: each names its modules.
        targets: list.length === 1 ? ["Linear"] : g.modules,
        weights: g.weights,
        input_activations: null,
        output_activations: null,
        format: g.format,
      },
    ]),
  );
  return {
    ...cfg,
    quantization_config: {
      quant_method: "compressed-tensors",
      format,
      quantization_status: "compressed",
      config_groups: configGroups,
      ignore,
      kv_cache_scheme: null,
      global_compression_ratio: null,
      sparsity_config: {},
    },
  };
}

export const COMPRESSED_TENSORS_LAYOUT: Layout = {
  name: "compressed-tensors",
  adapt,
  written: (source, g) => written(source, g),
  dequantize,
  config,
};
