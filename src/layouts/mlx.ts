/**
 * `--layout mlx`: MLX's affine quantization as `mlx.core.quantize` (mlx 0.32.4) makes it and
 * mlx_lm loads it: for a weight `X.weight` of shape [out, in] in groups of g along `in`
 * (g = --block-size, 32, 64 or 128; default 64, mlx_lm's):
 *
 *   X.weight  U32 [out, in·bits/32]   unsigned codes u, 32/bits per word, the first in the lowest bits
 *   X.scales  F32 [out, in/g]
 *   X.biases  F32 [out, in/g]         and the weight is scales · u + biases
 *
 * kquant's codes map onto it without requantizing:
 *   --int4 --block-size g  u = q + 8,   scales = s,         biases = f32(-(z + 8) · s)
 *   --int4 / --int8        u = q + 2^(bits-1), scales = f32(1/s) repeated over the row's groups,
 *                          biases = -2^(bits-1) · scales (exact)
 * MLX computes scales · u + biases in float32 with two roundings where Keras computes
 * (q - z) · s or q · f32(1/s) with one, so the loaded weights differ from kquant's own dequantize
 * by at most a few float32 ulps of |scales · u| + |biases| (docs/layouts.md states the bound the
 * loader test checks). As mlx_lm does, embeddings and lm_head are quantized too: mlx_lm quantizes
 * every module whose `scales` the folder holds. config.json gets `quantization: {group_size, bits}`.
 */
import { KquantError } from "../errors.js";
import { modeNamed } from "../modes/registry.js";
import type { QuantSpec } from "../plan/spec.js";
import type { StoredGeometry } from "../plan/stored.js";
import { bytesOfF32, f32Of, moduleOf, reciprocals } from "./bytes.js";
import { mlxAffineDequantize } from "../quant/mlx/affine.js";
import { packRows, unsignedCodes, wordsPerRow } from "./codes.js";
import type { Layout, LayoutTensor, SourceTensor, WrittenTensor } from "./layout.js";

/** The group sizes mlx.core.quantize takes for affine int4 and int8. */
export const MLX_GROUP_SIZES: readonly number[] = [32, 64, 128];
const DEFAULT_GROUP_SIZE = 64;

const bitsOf = (g: Pick<QuantSpec, "mode">): 4 | 8 => modeNamed(g.mode).bits as 4 | 8;

/** MLX's affine layout holds integer codes of 4 or 8 bits only. */
const holds = (g: Pick<QuantSpec, "mode">): boolean => {
  const m = modeNamed(g.mode);
  return m.kind === "int" && (m.bits === 4 || m.bits === 8);
};

function adapt(source: SourceTensor & { file?: string }, spec: QuantSpec): QuantSpec | string {
  if (!holds(spec)) {
    throw new KquantError(`${source.file ?? ""}: tensor "${source.name}": --layout mlx holds affine int4 and int8 only, not float8`);
  }
  const group = spec.blockSize ?? DEFAULT_GROUP_SIZE;
  if (!MLX_GROUP_SIZES.includes(group)) {
    throw new KquantError(`--layout mlx: --block-size ${group}: MLX's affine groups are ${MLX_GROUP_SIZES.join(", ")}`);
  }
  if (!source.name.endsWith(".weight")) return "only module weights (X.weight) are quantized";
  if (source.shape.length !== 2) return `only 2-D weights are quantized, this is [${source.shape}]`;
  const inFeatures = source.shape[1]!;
  if (inFeatures % group !== 0) return `group size ${group} does not divide the last dimension ${inFeatures}`;
  // Scales per output row (or per group along the last axis), int4 packed along the last axis.
  return { ...spec, axis: 1, blockSize: group, ...(modeNamed(spec.mode).packed ? { packAxis: 1 } : {}) };
}

function checkGeometry(source: SourceTensor, g: StoredGeometry): number {
  const group = g.blockSize;
  const ok =
    source.shape.length === 2 && holds(g) && g.axis === 1 && (!modeNamed(g.mode).packed || g.packAxis === 1) && group !== undefined && source.shape[1]! % group === 0;
  if (!ok) throw new KquantError(`tensor "${source.name}": ${g.mode} axis ${g.axis} block ${group} of shape [${source.shape}] is not a layout MLX holds`);
  return group!;
}

function written(source: SourceTensor, g: StoredGeometry): WrittenTensor[] {
  const group = checkGeometry(source, g);
  const base = moduleOf(source.name);
  const [out, inF] = source.shape as [number, number];
  const groups = inF / group;
  const bits = bitsOf(g);
  const half = 1 << (bits - 1);
  const affine = modeNamed(g.mode).zeroPoint;
  // Symmetric per-channel codes: one reciprocal scale per row, repeated over the row's groups.
  const rowScales = (scale: Uint8Array) => {
    const r = reciprocals(f32Of(scale));
    const out2 = new Float32Array(out * groups);
    for (let i = 0; i < out2.length; i++) out2[i] = r[Math.floor(i / groups)]!;
    return out2;
  };
  return [
    { name: `${base}.weight`, dtype: "U32", shape: [out, wordsPerRow(inF, bits)], encode: (s) => packRows(unsignedCodes(s.values, out, inF, bits), bits) },
    affine
      ? { name: `${base}.scales`, dtype: "F32", shape: [out, groups], from: "scale" }
      : { name: `${base}.scales`, dtype: "F32", shape: [out, groups], encode: (s) => bytesOfF32(rowScales(s.scale)) },
    {
      name: `${base}.biases`,
      dtype: "F32",
      shape: [out, groups],
      encode: (s) => {
        if (!affine) return bytesOfF32(rowScales(s.scale).map((v) => -half * v));
        const scale = f32Of(s.scale);
        const zero = new Int8Array(s.zero!.buffer, s.zero!.byteOffset, s.zero!.byteLength);
        return bytesOfF32(scale.map((v, i) => -(zero[i]! + half) * v));
      },
    },
  ];
}

/** What mx.dequantize computes (src/quant/mlx/affine.ts): scales · u + biases in float32, each operation rounded. */
function dequantize(source: SourceTensor, g: StoredGeometry, bytes: ReadonlyMap<string, Uint8Array>): Float32Array {
  const group = checkGeometry(source, g);
  const base = moduleOf(source.name);
  const [out, inF] = source.shape as [number, number];
  const bits = bitsOf(g);
  const w = bytes.get(`${base}.weight`)!;
  const aligned = w.byteOffset % 4 === 0 ? w : w.slice();
  const wq = new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  const groupsShape = [out, inF / group];
  const scales = { dtype: "float32" as const, shape: groupsShape, data: f32Of(bytes.get(`${base}.scales`)!) };
  const biases = { dtype: "float32" as const, shape: groupsShape, data: f32Of(bytes.get(`${base}.biases`)!) };
  return mlxAffineDequantize(wq, [out, wordsPerRow(inF, bits)], scales, biases, bits, group).data as Float32Array;
}

/** config.json with `quantization: {group_size, bits}` (and mlx_lm's copy under quantization_config); tensors of another size or width named per module. */
function config(cfg: Readonly<Record<string, unknown>>, tensors: readonly LayoutTensor[]): Record<string, unknown> {
  const quantized = tensors.filter((t) => t.spec !== null);
  if (quantized.length === 0) throw new KquantError("--layout mlx: no weight is quantized, so there is no quantization to write");
  const paramsOf = (spec: QuantSpec) => ({ group_size: spec.blockSize!, bits: bitsOf(spec) });
  const main = paramsOf(quantized[0]!.spec!);
  const quantization: Record<string, unknown> = { ...main, mode: "affine" };
  for (const t of quantized) {
    const p = paramsOf(t.spec!);
    if (p.group_size !== main.group_size || p.bits !== main.bits) quantization[moduleOf(t.name)] = p;
  }
  return { ...cfg, quantization, quantization_config: quantization };
}

export const MLX_LAYOUT: Layout = {
  name: "mlx",
  adapt,
  written: (source, g) => written(source, g),
  dequantize,
  config,
  int8Groups: true,
};
