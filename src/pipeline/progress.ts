/** A progress bar on stderr for long runs: tensor, bytes, rate, ETA. Silent off a terminal or with --quiet. */

export interface Progress {
  /** `bytes` more source bytes are done; `label` is the tensor now being worked on. */
  advance(bytes: number, label: string): void;
  stop(): void;
}

const SILENT: Progress = { advance() {}, stop() {} };

const SHOW_CURSOR = "\x1b[?25h";

/** Bars on screen now, each with what its stream needs to show the cursor again. */
const drawn = new Map<Progress, NodeJS.WriteStream>();

/**
 * For an interrupt (src/cli/signals.ts): stops every bar on screen and clears its line, and
 * returns what shows the cursor again, to be called after any last message so that it is the
 * last thing the terminal receives. Synchronous: terminal writes are, on Linux and macOS.
 */
export function releaseTerminal(): () => void {
  const streams = [...drawn.values()];
  for (const bar of [...drawn.keys()]) bar.stop();
  return () => {
    for (const stream of new Set(streams)) stream.write(SHOW_CURSOR);
  };
}

const MiB = 1024 * 1024;

export async function startProgress(totalBytes: number, opts: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): Promise<Progress> {
  const stream = opts.stream ?? process.stderr;
  if (opts.quiet || !stream.isTTY) return SILENT;
  // Loaded only when a bar is drawn: in CI and scripts (no terminal) it would only slow the start.
  const { default: cliProgress } = await import("cli-progress");
  // Sized to the terminal: the bar shrinks first, then the tensor name loses its start, so the
  // numbers are never cut off (cli-progress cuts the line at the terminal's width).
  const columns = () => stream.columns || 80;
  const barsize = Math.max(10, Math.min(40, columns() - 75));
  const bar = new cliProgress.SingleBar(
    {
      stream,
      barsize,
      format: " {bar} {percentage}% | {done}/{all} MiB | {rate} MiB/s | ETA {eta_formatted}{label}",
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let done = 0;
  const fields = (label: string) => {
    const seconds = Math.max((Date.now() - started) / 1000, 1e-3);
    const numbers = {
      done: (done / MiB).toFixed(0),
      all: (totalBytes / MiB).toFixed(0),
      rate: (done / MiB / seconds).toFixed(0),
    };
    // Everything but the label: the bar, " 100% | ", the numbers, and an ETA of up to 6 characters.
    const fixed = 1 + barsize + 8 + numbers.done.length + numbers.all.length + 7 + numbers.rate.length + 15 + 6;
    const room = columns() - fixed - 4;
    const shown = room < 8 || label === "" ? "" : label.length <= room ? label : `…${label.slice(label.length - room + 1)}`;
    return { ...numbers, label: shown === "" ? "" : ` | ${shown}` };
  };
  bar.start(totalBytes, 0, fields(""));
  const progress: Progress = {
    advance(bytes, label) {
      done += bytes;
      bar.update(done, fields(label));
    },
    stop() {
      drawn.delete(progress);
      bar.stop();
    },
  };
  drawn.set(progress, stream);
  return progress;
}
