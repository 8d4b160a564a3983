import { defineConfig } from "vitest/config";

/** Slow checks (multi-GiB files): `npx vitest run --config vitest.slow.config.ts`. */
export default defineConfig({
  test: {
    include: ["test/slow/**/*.slow.test.ts"],
    testTimeout: 15 * 60_000,
    hookTimeout: 5 * 60_000,
    pool: "forks",
    fileParallelism: false,
    // Lets the tests drop one tensor before reading the next, so RSS reflects one tensor at a time.
    execArgv: ["--expose-gc"],
  },
});
