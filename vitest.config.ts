import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The slow suite (files over 4 GiB, packed tarball, single-file exe) runs from .ci/run
    // with vitest.slow.config.ts, keeping `npm test` to seconds.
    exclude: ["test/slow/**", "**/node_modules/**"],
    // Every limit stays ≥ 3× its test's time on an idle machine. Measured on 2 shared cores at load
    // ~5 (2026-12): the slowest test 6.9 s (hostile/fuzz, its own 300 s limit), the slowest under
    // this default 3.4 s, the slowest beforeAll (web/page: bundle, Chromium) 1.6 s of vitest's 10 s.
    testTimeout: 60_000,
    pool: "forks",
  },
});
