/**
 * `verify --against ORIGINAL --exact` of a --scheme folder: a quantized weight's stored tensors
 * re-derived from the original weight by the preset's kernel (the one `quantize --scheme` runs,
 * format-slice.ts) and compared byte for byte. NVFP4's global scale comes from the originals of
 * every weight that shares it (plan/llmc-targets.ts fuses them as the run does, with the folder's
 * `ignore`), so a forged global scale is caught too.
 */
import type { TensorInfo, TensorReader } from "../../formats/types.js";
import { LLMC_DTYPE_OF, type SchemeDescriptor } from "../../modes/llmc-schemes.js";
import { llmcActions } from "../../plan/llmc-targets.js";
import { llmcAbsMax } from "../../quant/llmc/linear.js";
import { globalScale } from "../../quant/llmc/qparams.js";
import { formatSlice, llmcWeightOf } from "../quantize/format-slice.js";
import { storedDifference } from "./exact.js";

/** Each original weight's absmax, read once per original (an NVFP4 fused set asks for each member three times). */
const absmaxes = new WeakMap<TensorReader, Map<string, Promise<number>>>();

function absmaxOf(original: TensorReader, info: TensorInfo): Promise<number> {
  let known = absmaxes.get(original);
  if (known === undefined) absmaxes.set(original, (known = new Map()));
  let m = known.get(info.name);
  if (m === undefined) {
    const [rows, cols] = info.shape as [number, number];
    m = original.read(info.name).then((b) => llmcAbsMax(llmcWeightOf(info.dtype, rows, cols, b).values));
    known.set(info.name, m);
  }
  return m;
}

/** The global scale the run gives weight `info` (NVFP4's tensor_group strategy), undefined for the other strategies. */
async function globalScaleOf(d: SchemeDescriptor, ignore: readonly string[], info: TensorInfo, original: TensorReader): Promise<number | undefined> {
  if (d.preset.weights!.strategy !== "tensor_group") return undefined;
  const infos = new Map(original.tensors.map((t) => [t.name, t]));
  const action = llmcActions([...infos.keys()], ignore, true).get(info.name);
  const set = action?.kind === "quantize" ? action.globalSet : [info.name];
  let absmax = 0;
  for (const n of set) absmax = Math.max(absmax, await absmaxOf(original, infos.get(n) ?? info));
  return globalScale(absmax, LLMC_DTYPE_OF[info.dtype]!);
}

/**
 * Where the stored tensors of module `module`'s weight (`stored`: by suffix, as read) differ from
 * what `d`'s kernel makes of the original weight `bytes` (`info`), one line per tensor; [] when equal.
 */
export async function schemeExactProblems(
  d: SchemeDescriptor,
  ignore: readonly string[],
  module: string,
  stored: ReadonlyMap<string, Uint8Array>,
  bytes: Uint8Array,
  info: TensorInfo,
  original: TensorReader,
): Promise<string[]> {
  if (info.shape.length !== 2) return [`the original is ${info.dtype} [${info.shape}], not a 2-D weight ${d.name} quantizes`];
  const [rows, cols] = info.shape as [number, number];
  const gs = await globalScaleOf(d, ignore, info, original);
  const parts = formatSlice({ kind: "llmc", preset: d.preset.name, dtype: info.dtype, cols, ...(gs !== undefined ? { globalScale: gs } : {}) }, rows, bytes)!; // no checkValues: never null
  const by = `${d.name}'s kernel makes from the original`;
  return parts.flatMap((p) => storedDifference(`tensor "${module}.${p.suffix}"`, p.bytes, stored.get(p.suffix), by) ?? []);
}
