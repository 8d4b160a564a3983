/** A progress bar on stderr for long runs: tensor, bytes, rate, ETA. Silent off a terminal or with --quiet. */
import cliProgress from "cli-progress";

export interface Progress {
  /** `bytes` more source bytes are done; `label` is the tensor now being worked on. */
  advance(bytes: number, label: string): void;
  stop(): void;
}

const SILENT: Progress = { advance() {}, stop() {} };
const MiB = 1024 * 1024;

export function startProgress(totalBytes: number, opts: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.quiet || !stream.isTTY) return SILENT;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: " {bar} {percentage}% | {done}/{all} MiB | {rate} MiB/s | ETA {eta_formatted} | {label}",
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
    return {
      label,
      done: (done / MiB).toFixed(0),
      all: (totalBytes / MiB).toFixed(0),
      rate: (done / MiB / seconds).toFixed(0),
    };
  };
  bar.start(totalBytes, 0, fields(""));
  return {
    advance(bytes, label) {
      done += bytes;
      bar.update(done, fields(label));
    },
    stop() {
      bar.stop();
    },
  };
}
