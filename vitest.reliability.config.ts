import { defineConfig } from 'vitest/config';

/**
 * `npm run test:reliability`: malformed traffic, faults (worker SIGKILL, LISTEN connection
 * terminated, PostgreSQL server restarted) and load against real server and worker processes on
 * the local PostgreSQL server (CAS_TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test).
 * A separate run, after `npm test` in .ci/run, because restarting the server would break any test
 * running beside it; for the same reason its files run one at a time. The files are named
 * `*.reliability.ts`, so `npm test` (test/**\/*.test.ts) never picks them up.
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.reliability.ts'],
    pool: 'forks',
    // Kills leftover child processes: after each file, and (global setup) of test workers that died.
    setupFiles: ['test/support/setup-file.ts'],
    globalSetup: ['test/support/child-sweep.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 240_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
