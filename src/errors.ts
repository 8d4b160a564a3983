/** The parts of a user error: where it is (file, tensor), what is wrong, what to do about it. */
export interface KquantErrorFields {
  /** What is wrong, without the file or tensor (they have their own fields). */
  what: string;
  /** The file (or option, e.g. "--block-size 0") the problem is in. */
  file?: string;
  /** The tensor, by its name in `file`. */
  tensor?: string;
  /** What the user can do about it, when there is something to say. */
  hint?: string;
  /** The process exit code the CLI uses (default 2: bad usage or bad input; 1: a check failed). */
  exitCode?: number;
}

/**
 * An error a user can act on: bad input, bad usage, a failed check. Built from fields (or, for the
 * kernels' own checks, a bare `what`); `message` and `format()` assemble them here and nowhere else,
 * so every error reads `<file>: tensor "<name>": <what> (<hint>)`.
 */
export class KquantError extends Error {
  readonly what: string;
  readonly file?: string;
  readonly tensor?: string;
  readonly hint?: string;
  readonly exitCode: number;

  constructor(fields: KquantErrorFields | string, exitCode?: number) {
    const f: KquantErrorFields = typeof fields === "string" ? { what: fields } : fields;
    super(messageOf(f));
    this.name = "KquantError";
    this.what = f.what;
    if (f.file !== undefined) this.file = f.file;
    if (f.tensor !== undefined) this.tensor = f.tensor;
    if (f.hint !== undefined) this.hint = f.hint;
    this.exitCode = exitCode ?? f.exitCode ?? 2;
  }

  /** The fields, as plain data (what crosses from a worker thread to the main thread). */
  fields(): KquantErrorFields {
    return {
      what: this.what,
      ...(this.file !== undefined ? { file: this.file } : {}),
      ...(this.tensor !== undefined ? { tensor: this.tensor } : {}),
      ...(this.hint !== undefined ? { hint: this.hint } : {}),
      exitCode: this.exitCode,
    };
  }

  /** This error with `where` filled in where it names nothing yet (a kernel error gets its file and tensor). */
  within(where: { file?: string; tensor?: string }): KquantError {
    return new KquantError({ ...where, ...this.fields() });
  }

  /**
   * The one line the CLI prints: `kquant: ` and the whole message, never cut (a long path or a
   * list of choices is the part the user needs); line breaks inside it become spaces, and other
   * control characters are escaped (a name from a file cannot move the cursor or ring the bell).
   */
  format(): string {
    return printable(`kquant: ${this.message.replace(/\s*\n\s*/g, " ")}`);
  }
}

/**
 * `text` with every control character (C0, DEL, C1; newlines and tabs too) written as an escape,
 * `\u001b` style, so that text from a file (a tensor name, a path, a JSON error quoting the file)
 * prints as one inert line on a terminal or in a page.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, escapeChar);
}

/** Text of several lines (a report, a table) as printable() makes one: its newlines and tabs kept. */
export function printableLines(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, escapeChar);
}

const escapeChar = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * The exit status of a fault in the machine rather than in the input (sysexits' EX_IOERR): the
 * disk is full, a read failed, a file or folder changed or vanished while kquant used it.
 */
export const EXIT_IO_FAULT = 74;

function whereOf(f: Pick<KquantErrorFields, "file" | "tensor">): string[] {
  const where: string[] = [];
  if (f.file !== undefined) where.push(f.file);
  if (f.tensor !== undefined) where.push(`tensor ${JSON.stringify(f.tensor)}`);
  return where;
}

function messageOf(f: KquantErrorFields): string {
  const hint = f.hint !== undefined ? ` (${f.hint})` : "";
  return [...whereOf(f), f.what].join(": ") + hint;
}
