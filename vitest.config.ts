import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The slow suite (files over 4 GiB, packed tarball, single-file exe) runs from .ci/run
    // with vitest.slow.config.ts, keeping `npm test` to seconds.
    exclude: ["test/slow/**", "**/node_modules/**"],
    testTimeout: 60_000,
    pool: "forks",
  },
});
