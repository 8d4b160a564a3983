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
  const walkValue = (): DuplicateKey | null => {
    skipSpace();
    const c = text[i];
    if (c === '"') {
      readString();
      return null;
    }
    if (c === "{") {
      i++;
      skipSpace();
      if (text[i] === "}") {
        i++;
        return null;
      }
      const seen = new Set<string>();
      for (;;) {
        skipSpace();
        const key = readString();
        if (seen.has(key)) return { path: [...path], key };
        seen.add(key);
        skipSpace();
        i++; // ':'
        path.push(key);
        const found = walkValue();
        path.pop();
        if (found !== null) return found;
        skipSpace();
        if (text[i++] === "}") return null; // else ','
      }
    }
    if (c === "[") {
      i++;
      skipSpace();
      if (text[i] === "]") {
        i++;
        return null;
      }
      for (let index = 0; ; index++) {
        path.push(String(index));
        const found = walkValue();
        path.pop();
        if (found !== null) return found;
        skipSpace();
        if (text[i++] === "]") return null;
      }
    }
    skipScalar();
    return null;
  };
  return walkValue();
}
