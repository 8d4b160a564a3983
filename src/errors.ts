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

/**
 * The exit status of a fault in the machine rather than in the input (sysexits' EX_IOERR): the
 * disk is full, a read failed, a file or folder changed or vanished while kquant used it.
 */
export const EXIT_IO_FAULT = 74;
