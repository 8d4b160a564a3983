/**
 * The default gate of `verify --against` for the references' formats (llm-compressor presets,
 * MLX modes): the least SQNR, in dB, a weight of Gaussian-like values reaches when its codes have
 * `bits` bits. Measured on Gaussian weights: integer codes in groups of 128 gave W2 5.2 dB … W8
 * 42.9 dB; the floors leave a margin for heavier tails. MLX's 1-bit affine codes are worse than
 * no weight at all on such values (-3.2 / -4.6 / -5.6 dB in groups of 32 / 64 / 128, σ 0.02,
 * [512, 1024], float32): their floor only catches a wrecked tensor. FP4 (E2M1) and FP8 (E4M3)
 * codes with per-group scales: 10 and 20 dB.
 */
const INT_FLOOR_DB: Readonly<Record<number, number>> = { 1: -10, 2: 2, 3: 6, 4: 10, 5: 15, 6: 20, 7: 25, 8: 30 };

/** The floor of `bits`-bit integer codes (affine or symmetric, per group or channel), 1 to 8 bits. */
export function intSqnrFloorDb(bits: number): number {
  const f = INT_FLOOR_DB[bits];
  if (f === undefined) throw new RangeError(`no SQNR floor for ${bits}-bit integer codes`);
  return f;
}

/** The floor of float codes: FP8 (E4M3) 20 dB, FP4 (E2M1) 10 dB. */
export function floatSqnrFloorDb(bits: 4 | 8): number {
  return bits === 8 ? 20 : 10;
}
