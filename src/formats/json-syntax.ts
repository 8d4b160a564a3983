/**
 * Where JSON text stops being JSON, told the same way on every JavaScript engine: JSON.parse's
 * own messages differ between V8 versions (Node's and a browser's), and some name no position.
 * An iterative scan (no recursion, whatever the nesting) finds the first byte that breaks the
 * grammar (RFC 8259) and names its line and column, for the one-line errors of headers, indexes,
 * config.json and recipes.
 */

/** JSON.parse of `text`; on failure throws an Error whose message is `jsonSyntaxProblem(text)`. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(jsonSyntaxProblem(text) ?? (err as Error).message.split("\n")[0]);
  }
}

const found = (text: string, i: number) => (i >= text.length ? "the end of the text" : `'${text[i] === "'" ? "\\'" : text[i]}'`);

/**
 * "line L, column C: <what is wrong>" for the first place `text` breaks JSON's grammar, or null
 * if it is valid JSON. Lines and columns count from 1, columns in UTF-16 code units.
 */
export function jsonSyntaxProblem(text: string): string | null {
  const at = firstProblem(text);
  if (at === null) return null;
  let line = 1;
  let lineStart = 0;
  for (let k = 0; k < at.index && k < text.length; k++) {
    if (text.charCodeAt(k) === 0x0a) {
      line++;
      lineStart = k + 1;
    }
  }
  return `line ${line}, column ${at.index - lineStart + 1}: ${at.what}`;
}

type State = "value" | "after" | "key-or-end" | "key" | "value-or-end";
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const LITERALS = ["true", "false", "null"];

function firstProblem(text: string): { index: number; what: string } | null {
  const stack: string[] = [];
  let i = 0;
  let state: State = "value";
  const ws = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };
  const fail = (what: string) => ({ index: i, what });
  /** Moves past the string at `i`, or returns what is wrong with it. */
  const string = (): { index: number; what: string } | null => {
    i++;
    for (;;) {
      if (i >= text.length) return fail("unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return null;
      }
      if (c < 0x20) return fail("control character in a string (escape it)");
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return fail("\\u needs four hex digits");
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else return fail(`bad escape ${found(text, i + 1)}`);
      } else i++;
    }
  };
  for (;;) {
    ws();
    switch (state) {
      case "value": {
        const c = text[i];
        if (c === "{") {
          i++;
          stack.push("{");
          state = "key-or-end";
        } else if (c === "[") {
          i++;
          stack.push("[");
          state = "value-or-end";
        } else if (c === '"') {
          const bad = string();
          if (bad) return bad;
          state = "after";
        } else if (c !== undefined && (c === "-" || (c >= "0" && c <= "9"))) {
          NUMBER.lastIndex = i;
          const m = NUMBER.exec(text);
          if (m === null) return fail(`bad number`);
          i += m[0].length;
          state = "after";
        } else {
          const lit = LITERALS.find((l) => text.startsWith(l, i));
          if (lit === undefined) return fail(`expected a value, found ${found(text, i)}`);
          i += lit.length;
          state = "after";
        }
        break;
      }
      case "key-or-end":
        if (text[i] === "}") {
          i++;
          stack.pop();
          state = "after";
        } else state = "key";
        break;
      case "value-or-end":
        if (text[i] === "]") {
          i++;
          stack.pop();
          state = "after";
        } else state = "value";
        break;
      case "key": {
        if (text[i] !== '"') return fail(`expected a double-quoted key, found ${found(text, i)}`);
        const bad = string();
        if (bad) return bad;
        ws();
        if (text[i] !== ":") return fail(`expected ':' after the key, found ${found(text, i)}`);
        i++;
        state = "value";
        break;
      }
      case "after": {
        const top = stack[stack.length - 1];
        if (top === undefined) return i < text.length ? fail(`unexpected ${found(text, i)} after the JSON value`) : null;
        const close = top === "{" ? "}" : "]";
        if (text[i] === ",") {
          i++;
          state = top === "{" ? "key" : "value";
        } else if (text[i] === close) {
          i++;
          stack.pop();
        } else return fail(`expected ',' or '${close}', found ${found(text, i)}`);
        break;
      }
    }
  }
}
