/**
 * The CLI on a real pseudo-terminal (util-linux `script`), so the progress bar and the terminal's
 * ^C are the ones a user sees, stopped at a moment the caller picks.
 */
import { spawn } from "node:child_process";

/** What a terminal run left: its exit code and every byte the terminal received. */
export interface TerminalRun {
  code: number | null;
  /** The terminal's bytes as latin1 text (escapes intact). */
  screen: string;
}

/** Sends `signal` to `pid`; a run that already ended (ESRCH) is an outcome the caller judges, not an error. */
function signalIfAlive(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/**
 * Runs `node <cli> <args>` on a pseudo-terminal in `dir`. Once `when()` holds (polled every 2 ms),
 * `how` stops it: "ctrl-c" types ^C on the terminal, a signal name signals the CLI's process.
 * A run that ends first is resolved as it ended. Killed after 60 s.
 */
export function terminalRun(cli: string, dir: string, args: string, how: "ctrl-c" | NodeJS.Signals, when: () => boolean): Promise<TerminalRun> {
  const command = `echo "pid=$$"; exec "${process.execPath}" "${cli}" ${args}`;
  const child = spawn("/usr/bin/script", ["-qfec", command, "/dev/null"], { cwd: dir, stdio: ["pipe", "pipe", "inherit"] });
  const chunks: Buffer[] = [];
  child.stdout.on("data", (d: Buffer) => chunks.push(d));
  // ^C typed as the run ends may meet a closed terminal: that outcome is judged by the caller too.
  child.stdin.on("error", () => {});
  const screen = () => Buffer.concat(chunks).toString("latin1");
  const poll = setInterval(() => {
    const pid = /pid=(\d+)/.exec(screen())?.[1];
    if (pid === undefined || !when()) return;
    clearInterval(poll);
    if (how === "ctrl-c") child.stdin.write("\x03");
    else signalIfAlive(Number(pid), how);
  }, 2);
  const limit = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(poll);
      clearTimeout(limit);
      resolve({ code, screen: screen() });
    });
  });
}
