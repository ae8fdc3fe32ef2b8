import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Prepares the migrated database templates once per run; see test/support/databases.ts.
    globalSetup: ['test/support/global-setup.ts'],
    // Child processes: PGlite (WASM) and native sockets behave best outside worker_threads.
    pool: 'forks',
    // Every test file opens its own database, so files run in parallel (at least two at a time).
    fileParallelism: true,
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
