/** How many groups of `blockSize` cover `length` elements: the last one may be partial. */
export function groupCount(length: number, blockSize: number): number {
  return Math.ceil(length / blockSize);
}
