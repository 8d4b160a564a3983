/**
 * Tensor-name patterns: `*` matches any run of characters (dots included, since tensor names are
 * dotted paths), `?` one character; everything else is literal. A pattern matches the whole name.
 *
 * Matching takes at most (name length × pattern length) steps whatever the pattern: the parts
 * between stars are found leftmost, one after another, never backtracking into an earlier part
 * (a regular expression of `.*`s backtracks exponentially on a pattern of many stars).
 */

/** A compiled pattern: `test(name)` says whether it matches the whole of `name`. */
export interface Glob {
  readonly pattern: string;
  test(name: string): boolean;
}

const ANY = -1;

/** A part between stars as code points, `?` as ANY. */
type Part = number[];

function partOf(text: string): Part {
  return Array.from(text, (ch) => (ch === "?" ? ANY : ch.codePointAt(0)!));
}

/** Does `part` match `name` at `at`? */
function matchesAt(part: Part, name: readonly number[], at: number): boolean {
  if (at + part.length > name.length) return false;
  for (let k = 0; k < part.length; k++) if (part[k] !== ANY && part[k] !== name[at + k]) return false;
  return true;
}

/** Compiles `pattern` (see the module's doc). */
export function compileGlob(pattern: string): Glob {
  const parts = pattern.split("*").map(partOf);
  const head = parts[0]!;
  const tail = parts.length > 1 ? parts[parts.length - 1]! : null;
  const middle = parts.slice(1, -1).filter((p) => p.length > 0);
  const test = (text: string): boolean => {
    const name = Array.from(text, (ch) => ch.codePointAt(0)!);
    if (tail === null) return name.length === head.length && matchesAt(head, name, 0);
    if (name.length < head.length + tail.length || !matchesAt(head, name, 0) || !matchesAt(tail, name, name.length - tail.length)) return false;
    let at = head.length;
    const end = name.length - tail.length;
    for (const part of middle) {
      while (at + part.length <= end && !matchesAt(part, name, at)) at++;
      if (at + part.length > end) return false;
      at += part.length;
    }
    return true;
  };
  return { pattern, test };
}

/** Does any of `patterns` match `name`? */
export function matchesAny(name: string, patterns: readonly Glob[]): boolean {
  return patterns.some((p) => p.test(name));
}
