/** Values the global setup hands to every test file through vitest's provide/inject. */
export interface PostgresTestServer {
  /** The CAS_TEST_DATABASE_URL the run connects to in order to create and drop databases. */
  adminUrl: string;
  /** A migrated and seeded database that per-file databases are copied from. */
  template: string;
  /** Prefix of every database this run creates (cas_test_<pid>_<epoch seconds>_). */
  prefix: string;
}

/**
 * Where the 'supabase' kind runs: local doubles (PostgREST and Realtime over a per-file database),
 * a real project (npm run test:supabase), or nowhere (that run lacks the project's settings).
 */
export type SupabaseTestTarget =
  | { target: 'doubles' }
  | { target: 'project'; url: string; serviceRoleKey: string; dbUrl: string }
  | { target: 'skip'; reason: string };

declare module 'vitest' {
  export interface ProvidedContext {
    /** The database kinds this vitest project runs describeEachDatabase suites on (vitest.config.ts). */
    casKinds: Array<'pglite' | 'postgres' | 'supabase'>;
    casSupabase: SupabaseTestTarget;
    /** Path of a gzip tarball of a migrated and seeded PGlite data folder. */
    casPgliteTemplate: string;
    /** Null when the PostgreSQL-server suites are skipped. */
    casPostgres: PostgresTestServer | null;
  }
}
