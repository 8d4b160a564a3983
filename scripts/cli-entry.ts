/**
 * Entry of the CLI bundle (scripts/bundle.mjs), which bin/kquant.js and the single-file executable
 * run. A CommonJS bundle (all that Node 20's SEA runs) cannot hold top-level await, so the exit
 * code is set from the promise.
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
