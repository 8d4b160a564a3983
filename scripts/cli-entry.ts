/**
 * Entry of the CLI bundle (scripts/bundle.mjs), which bin/kquant.js and the single-file executable
 * run. A CommonJS bundle (all that Node 20's SEA runs) cannot hold top-level await, so the exit
 * code is set from the promise.
 */
import { main } from "../src/cli/main.js";
import { SIGNAL_EXIT_CODES } from "../src/cli/signals.js";

/**
 * The command has finished (main has kept or removed its outputs and dropped its signal handlers)
 * and the process winds down (worker threads ending, output flushing). A signal now must not turn
 * a whole run into one reported as stopped, nor kill it with Node's default status: it ends the
 * process at once with the command's own status. Set in the same microtask chain as main's end,
 * so no signal event runs between the two.
 */
function settle(code: number): void {
  process.exitCode = code;
  for (const signal of Object.keys(SIGNAL_EXIT_CODES)) process.on(signal, () => process.exit(code));
}

main(process.argv).then(settle, (err: unknown) => {
  process.stderr.write(`kquant: internal error: ${String(err)}\n`);
  settle(70);
});
