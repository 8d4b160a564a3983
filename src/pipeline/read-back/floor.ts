/** The default gate of `verify --against`, from the mode descriptors (src/modes: each mode's minSqnrDb); the CLI's help shows it. */
import { allModes } from "../../modes/registry.js";
import type { Mode } from "../../plan/spec.js";

/**
 * `verify --against` with no threshold: the SQNR (dB) below which a tensor fails, by mode. Each sits
 * well under what abs-max quantization of Gaussian weights gives (int8 ≈ 42, int4 per channel ≈
 * 17, grouped int4 ≈ 20, float8 e4m3 ≈ 31, e5m2 ≈ 25) and above a wrecked tensor (int4 scaled
 * along the wrong axis of a Hugging Face checkpoint measures ≈ 8). Any threshold flag replaces it.
 */
export const DEFAULT_MIN_SQNR: Readonly<Record<Mode, number>> = Object.fromEntries(allModes().map((m) => [m.name, m.minSqnrDb])) as Record<Mode, number>;

/** The default floor as one line: "int8 30 dB, int4 10 dB, …". */
export function defaultFloorText(): string {
  return Object.entries(DEFAULT_MIN_SQNR).map(([mode, db]) => `${mode} ${db} dB`).join(", ");
}
