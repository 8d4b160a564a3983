/**
 * An error a user can act on: bad input, bad usage, a failed check. The message is one line
 * that names the file, the tensor and what is wrong; the CLI prints it and exits with `exitCode`.
 */
export class KquantError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 2,
  ) {
    super(message);
    this.name = "KquantError";
  }
}
