/**
 * Entry of the single-file executable. bin/kquant.js uses top-level await, which a CommonJS
 * bundle (all that Node 20's SEA runs) cannot hold, so the exit code is set from the promise.
 */
import { main } from "../src/cli/main.js";

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`kquant: internal error: ${String(err)}\n`);
    process.exitCode = 70;
  },
);
