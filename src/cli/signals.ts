/**
 * Ctrl-C (SIGINT), SIGTERM and a closed terminal (SIGHUP) during a command: everything it was
 * writing is removed, the progress bar is stopped and the cursor shown again, and the process exits
 * 128 + the signal's number (130, 143, 129), as a shell reports a process killed by it.
 *
 * All of it is synchronous, in the handler: the process exits at its end without returning to the
 * event loop, so nothing else runs in between (no read or write issues again, no new temp file
 * is started), and exiting stops the worker threads with it.
 */
import type { OutputScope } from "../formats/live-files.js";
import { releaseTerminal } from "../pipeline/progress.js";

/** The exit status for each handled signal: 128 + its number. */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

type Handled = keyof typeof SIGNAL_EXIT_CODES;

/**
 * Handles the signals while `outputs` collects a command's files; returns what removes the
 * handlers again (the default, dying at once, would leave its temp files behind).
 */
export function handleInterrupts(outputs: OutputScope): () => void {
  const handler = (signal: Handled): void => {
    const showCursor = releaseTerminal();
    const removed = outputs.removeSync();
    const what = removed.length === 0 ? "nothing was written" : `removed ${removed.length} unfinished file(s), nothing was left`;
    try {
      process.stderr.write(`kquant: stopped by ${signal}; ${what}\n`);
      showCursor();
    } catch {
      // The terminal is gone (SIGHUP): nothing to tell.
    }
    process.exit(SIGNAL_EXIT_CODES[signal]);
  };
  const signals = Object.keys(SIGNAL_EXIT_CODES) as Handled[];
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
