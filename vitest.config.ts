import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import type { SupabaseTestTarget } from './test/support/context.js';

/**
 * Two projects share one pool of workers:
 * - 'db': every test file, each describeEachDatabase suite on PGlite and (with
 *   CAS_TEST_DATABASE_URL) the PostgreSQL server;
 * - 'supabase': the runtime suites again, on the 'supabase' kind only: the runtime reaches its
 *   database through supabase-js, over the PostgREST and Realtime doubles (test/doubles).
 *
 * - 'langgraph': the runtime suites (test/runtime) again with CAS_RUNTIME=langgraph, on PGlite
 *   and the PostgreSQL server: one conformance suite for both runtimes. Worker processes the
 *   suites start inherit the setting.
 *
 * `npm run test:supabase` (vitest --mode supabase-project) runs only the 'supabase' project, against
 * the real project in SUPABASE_URL / SUPABASE_SERVICE_ROLE_KEY / CAS_TEST_SUPABASE_DB_URL; see
 * docs/supabase.md.
 */
const SUPABASE_SUITES = [
  'test/runtime/**/*.test.ts',
  'test/server/subscriptions.test.ts',
  'test/server/frontend-api.test.ts',
];
/** The runtime suites, run once per runtime. */
const RUNTIME_SUITES = ['test/runtime/**/*.test.ts'];
/** Tests of what only the LangGraph runtime does: they choose it themselves. */
const LANGGRAPH_ONLY = ['test/runtime/langgraph*.test.ts'];
/** Worker processes need DATABASE_URL: they stay on the PostgreSQL server. */
const NOT_ON_SUPABASE = [
  'test/runtime/workers.test.ts',
  'test/runtime/durable-workers.test.ts',
  'test/runtime/workflow-workers.test.ts',
];

function realProjectTarget(): SupabaseTestTarget {
  const url = process.env.SUPABASE_URL || process.env.NEXT_PUBLIC_SUPABASE_URL;
  const serviceRoleKey = process.env.SUPABASE_SERVICE_ROLE_KEY;
  const dbUrl = process.env.CAS_TEST_SUPABASE_DB_URL;
  if (url && serviceRoleKey && dbUrl) return { target: 'project', url, serviceRoleKey, dbUrl };
  const reason =
    'npm run test:supabase needs SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY and CAS_TEST_SUPABASE_DB_URL ' +
    '(the project database, for the assertions; the run empties the cas_ tables) - skipped; see docs/supabase.md';
  console.warn(`[cas tests] ${reason}`);
  return { target: 'skip', reason };
}

export default defineConfig(({ mode }) => {
  const realProject = mode === 'supabase-project';
  const shared = {
    // Child processes: PGlite (WASM) and native sockets behave best outside worker_threads.
    pool: 'forks' as const,
    // Kills the child processes a file leaves running, also after a failure or timeout.
    setupFiles: ['test/support/setup-file.ts'],
    testTimeout: 30_000,
    // Hooks open databases: a PGlite instance is CPU-bound WASM start-up (about 3 s on a quiet
    // machine), which two busy cores and a parallel file stretch past a minute.
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  };
  return {
    test: {
      // Prepares the migrated database templates once per run; see test/support/databases.ts.
      // And kills child processes that test workers which died left behind; see test/support/child-sweep.ts.
      globalSetup: ['test/support/child-sweep.ts', 'test/support/global-setup.ts'],
      // Every test file opens its own database, so files run in parallel (at least two at a time);
      // a real Supabase project is one database, so its files run one at a time.
      fileParallelism: !realProject,
      maxWorkers: realProject ? 1 : Math.max(2, availableParallelism() - 1),
      ...shared,
      projects: [
        {
          test: {
            ...shared,
            name: 'db',
            include: ['test/**/*.test.ts'],
            // test/supabase runs the Supabase doubles over each of these kinds.
            provide: { casKinds: ['pglite', 'postgres'], casSupabase: { target: 'doubles' } },
          },
        },
        {
          test: {
            ...shared,
            name: 'langgraph',
            include: RUNTIME_SUITES,
            exclude: LANGGRAPH_ONLY,
            env: { CAS_RUNTIME: 'langgraph' },
            provide: { casKinds: ['pglite', 'postgres'], casSupabase: { target: 'doubles' } },
          },
        },
        {
          test: {
            ...shared,
            name: 'supabase',
            include: SUPABASE_SUITES,
            exclude: NOT_ON_SUPABASE,
            provide: {
              casKinds: ['supabase'],
              casSupabase: realProject ? realProjectTarget() : { target: 'doubles' },
            },
          },
        },
      ],
    },
  };
});
