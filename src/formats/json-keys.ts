/**
 * JSON.parse keeps the last of two equal keys without a word; a checkpoint whose header names a
 * tensor twice is ambiguous, so this walks already-validated JSON text and reports the first repeat.
 */

export interface DuplicateKey {
  /** Keys leading to the object that repeats `key` ([] for the top level). */
  path: string[];
  key: string;
}

/** `text` must already have passed JSON.parse; the walk relies on it being well formed. */
export function findDuplicateKey(text: string): DuplicateKey | null {
  let i = 0;
  const path: string[] = [];

  const skipSpace = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const readString = (): string => {
    const start = i++;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x5c) i += 2;
      else if (c === 0x22) break;
      else i++;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const skipScalar = (): void => {
    while (i < text.length && ",}] \t\n\r".indexOf(text[i]!) < 0) i++;
  };
  /*
   * An explicit stack of the open objects and arrays, not recursion: JSON nested a hundred thousand
   * deep (which JSON.parse accepts) would otherwise exhaust the call stack.
   */
  type Frame = { seen: Set<string> | null; index: number };
  const stack: Frame[] = [];
  /** Starts the value at `i`: a scalar or string is skipped, an object or array opened (empty ones closed). */
  const startValue = (): void => {
    skipSpace();
    const c = text[i];
    if (c === '"') readString();
    else if (c === "{" || c === "[") {
      i++;
      skipSpace();
      if (text[i] === (c === "{" ? "}" : "]")) i++;
      else stack.push({ seen: c === "{" ? new Set() : null, index: -1 });
    } else skipScalar();
  };
  /** The open container's next member: its key checked and pushed on `path`; false once it closes. */
  const nextMember = (frame: Frame): DuplicateKey | "closed" | null => {
    skipSpace();
    if (frame.index >= 0) {
      path.pop();
      if (text[i++] !== ",") return "closed";
      skipSpace();
    }
    frame.index++;
    if (frame.seen === null) {
      path.push(String(frame.index));
      return null;
    }
    const key = readString();
    if (frame.seen.has(key)) return { path: [...path], key };
    frame.seen.add(key);
    skipSpace();
    i++; // ':'
    path.push(key);
    return null;
  };
  startValue();
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const next = nextMember(frame);
    if (next === "closed") stack.pop();
    else if (next !== null) return next;
    else startValue();
  }
  return null;
}
