import { defineConfig } from "vitest/config";

// One command, one summary: every package's unit tests plus the end-to-end tests of the whole local stack
// (the functions package's entry points are exercised there, through the real server, CLI and worker).
export default defineConfig({
  test: {
    projects: [
      { test: { name: "core", include: ["packages/core/test/**/*.test.ts"], testTimeout: 120_000, hookTimeout: 120_000 } },
      { test: { name: "sdk", include: ["packages/sdk/test/**/*.test.ts"], testTimeout: 300_000, hookTimeout: 120_000 } },
      {
        test: {
          name: "e2e",
          include: ["test/**/*.test.ts"],
          // The long load and fault runs: `npm run test:soak`.
          exclude: ["test/soak/**", "**/node_modules/**"],
          globalSetup: ["test/setup/generated.ts"],
          testTimeout: 300_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      // TF.js forward timings at full model sizes: benchmarks, run by `npm run bench:kernels`.
      { test: { name: "kernels", include: ["bench/kernels/*.bench-test.ts"], testTimeout: 1_800_000 } },
      {
        test: {
          name: "soak",
          include: ["test/soak/**/*.test.ts"],
          globalSetup: ["test/setup/generated.ts"],
          testTimeout: 900_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
