/**
 * The registry of quantization modes: each mode's descriptor (types.ts), looked up by name. Adding
 * a mode is a descriptor module here, its kernels in src/quant, and one line in `Mode` and
 * `DESCRIPTORS` below (docs/modes.md).
 */
import { KquantError } from "../errors.js";
import { FLOAT8_E4M3FN, FLOAT8_E5M2 } from "./float8.js";
import { INT4, INT8 } from "./abs-max.js";
import { INT4_GROUPED } from "./int4-grouped.js";
import type { ModeDescriptor } from "./types.js";

/** The modes' names, in registration order. */
export type Mode = "int8" | "int4" | "int4_grouped" | "float8_e4m3fn" | "float8_e5m2";

/** Every registered descriptor, in the order reports and messages list them. */
const DESCRIPTORS: readonly ModeDescriptor[] = [INT8, INT4, INT4_GROUPED, FLOAT8_E4M3FN, FLOAT8_E5M2];

const BY_NAME = new Map<string, ModeDescriptor>(DESCRIPTORS.map((d) => [d.name, d]));

/** The registered modes' names, in registration order. */
export const MODES: readonly Mode[] = DESCRIPTORS.map((d) => d.name);

/** Whether `name` is a registered mode. */
export function isMode(name: unknown): name is Mode {
  return typeof name === "string" && BY_NAME.has(name);
}

/** The descriptor of mode `name`; an unknown name is refused in one line naming the known ones. */
export function modeNamed(name: string): ModeDescriptor {
  const d = BY_NAME.get(name);
  if (d === undefined) throw new KquantError(`unknown mode ${JSON.stringify(name)} (known: ${MODES.join(", ")})`);
  return d;
}

/** Every registered descriptor, in registration order. */
export function allModes(): readonly ModeDescriptor[] {
  return DESCRIPTORS;
}

/**
 * The mode a quantize flag selects (`int8`, `int4`, `float8`), with its format (--float8 e5m2)
 * and whether a block size is given (--int4 --block-size 128 is int4_grouped).
 */
export function modeOfFlag(flag: string, opts: { format?: string; blockSize?: boolean } = {}): Mode {
  const of = DESCRIPTORS.filter((d) => d.flag === flag && !d.grouped);
  const d = (opts.format === undefined ? of.find((x) => x.flagDefault) : of.find((x) => x.formats?.includes(opts.format!))) ?? of[0];
  if (d === undefined) throw new KquantError(`unknown mode flag --${flag}`);
  return opts.blockSize && d.withBlockSize !== undefined ? d.withBlockSize : d.name;
}

/**
 * kquant's own name for format `format` of `flag` (the first of the descriptor's `formats`:
 * e4m3fn and float8_e4m3fn are e4m3), as manifests record it; undefined when no mode takes it.
 */
export function formatName(flag: string, format: string): string | undefined {
  return DESCRIPTORS.find((d) => d.flag === flag && d.formats?.includes(format))?.formats?.[0];
}

/** The quantize flags that select a mode (--int8, --int4, --float8), in registration order. */
export function modeFlags(): string[] {
  return [...new Set(DESCRIPTORS.map((d) => d.flag))];
}
