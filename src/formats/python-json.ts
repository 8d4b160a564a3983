/**
 * JSON as Python's `json` module writes it, for files kquant must write as a Python tool does
 * (llm-compressor's config.json and index): `json.dumps(value, indent=…, sort_keys=…)` with
 * ensure_ascii, and numbers as `json.load` → `json.dump` turns them: an integer literal stays an
 * exact integer, a literal with a fraction or exponent becomes a float written as Python's repr
 * (`1e-06`, `10000.0`, `0.0`). No recursion: the writer walks with its own stack.
 */
import { KquantError } from "../errors.js";

/** A number literal of JSON text, kept as written (PythonJsonValue's numbers from parsePythonJson). */
export class PyNumber {
  constructor(readonly raw: string) {}
  /** Python's json.dumps of what json.loads made of the literal. */
  toPython(): string {
    if (!/[.eE]/.test(this.raw)) return BigInt(this.raw).toString();
    return pythonFloatRepr(Number(this.raw));
  }
}

/** Python's repr of a float (and json's Infinity / NaN). */
export function pythonFloatRepr(x: number): string {
  if (x !== x) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mant, expText] = Math.abs(x).toExponential().split("e") as [string, string];
  const digits = mant.replace(".", "");
  const exp = Number(expText);
  const sign = x < 0 ? "-" : "";
  if (exp < -4 || exp >= 16) {
    const m = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  const whole = digits.slice(0, exp + 1).padEnd(exp + 1, "0");
  const frac = digits.slice(exp + 1);
  return `${sign}${whole}.${frac === "" ? "0" : frac}`;
}

const MARK = "\u0000kquant-number:";

/**
 * Parses JSON text keeping each number literal as a PyNumber (in arrays and object values), so
 * that pythonJson writes it back as Python would. Throws a KquantError naming `file` on bad JSON.
 */
export function parsePythonJson(text: string, file: string): unknown {
  if (text.includes("\\u0000")) throw new KquantError({ file, what: "holds a NUL character (\\u0000), which kquant does not rewrite" });
  const raws: string[] = [];
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      const start = i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      out += text.slice(start, ++i);
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (m === null) throw new KquantError({ file, what: `not valid JSON at character ${i}` });
      out += JSON.stringify(`${MARK}${raws.length}`);
      raws.push(m[0]);
      i += m[0].length;
    } else {
      out += c;
      i++;
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(out);
  } catch (err) {
    throw new KquantError({ file, what: `not valid JSON: ${(err as Error).message.split("\n")[0]}` });
  }
  return mapStrings(value, (s) => (s.startsWith(MARK) ? new PyNumber(raws[Number(s.slice(MARK.length))]!) : s));
}

/** `value` with every string leaf replaced by `f(leaf)` (in place for containers; no recursion). */
function mapStrings(value: unknown, f: (s: string) => unknown): unknown {
  if (typeof value === "string") return f(value);
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== "object") continue;
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (typeof o[k] === "string") o[k] = f(o[k] as string);
      else stack.push(o[k]);
    }
  }
  return value;
}

const ascii = (s: string) => JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

function scalar(v: unknown): string {
  if (v instanceof PyNumber) return v.toPython();
  if (typeof v === "string") return ascii(v);
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : pythonFloatRepr(v);
  return JSON.stringify(v) ?? "null";
}

/** Python's `json.dumps(value, indent=indent, sort_keys=sortKeys)` (ensure_ascii, default separators). */
export function pythonJson(value: unknown, opts: { indent?: number; sortKeys?: boolean } = {}): string {
  const out: string[] = [];
  const stack: { items: [string | null, unknown][]; i: number; close: string; depth: number }[] = [];
  const newline = (d: number) => (opts.indent === undefined ? "" : `\n${" ".repeat(opts.indent * d)}`);
  const itemSep = opts.indent === undefined ? ", " : ",";
  const open = (v: unknown, depth: number): void => {
    if (v === null || typeof v !== "object" || v instanceof PyNumber) {
      out.push(scalar(v));
      return;
    }
    const array = Array.isArray(v);
    const keys = array ? [] : Object.keys(v);
    if (opts.sortKeys) keys.sort();
    const items: [string | null, unknown][] = array ? (v as unknown[]).map((x) => [null, x]) : keys.map((k) => [k, (v as Record<string, unknown>)[k]]);
    if (items.length === 0) {
      out.push(array ? "[]" : "{}");
      return;
    }
    out.push(array ? "[" : "{");
    stack.push({ items, i: 0, close: array ? "]" : "}", depth: depth + 1 });
  };
  open(value, 0);
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.i === f.items.length) {
      out.push(newline(f.depth - 1) + f.close);
      stack.pop();
      continue;
    }
    const [k, v] = f.items[f.i]!;
    out.push(`${f.i > 0 ? itemSep : ""}${newline(f.depth)}${k === null ? "" : `${ascii(k)}: `}`);
    f.i++;
    open(v, f.depth);
  }
  return out.join("");
}
