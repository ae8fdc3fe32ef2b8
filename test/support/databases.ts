/**
 * One database per test file, copied from the templates test/support/global-setup.ts migrated:
 *
 *   describeEachDatabase('runtime', (kind) => {
 *     let testDb: TestDatabase;
 *     beforeAll(async () => { testDb = await openTestDatabase(kind); });
 *     afterAll(() => testDb.close());
 *     it('...', async () => { await testDb.db.query('select 1'); });
 *   });
 *
 * The PostgreSQL-server kind runs only when CAS_TEST_DATABASE_URL is set; otherwise its suites
 * are registered as skipped.
 *
 * The 'supabase' kind is a database behind the Supabase doubles (test/doubles/supabase.ts): the
 * runtime reaches it over PostgREST RPC and Realtime only, through SUPABASE_URL (`env`), while the
 * test still reads the backing database (`db`) for its assertions. It runs in the vitest project
 * 'supabase' (vitest.config.ts), which runs the runtime suites again with only this kind; with
 * `npm run test:supabase` it is a real Supabase project instead of the doubles.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, inject } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { SUPABASE_DIR } from '../../src/db/migrate.js';
import { openPglite } from '../../src/db/pglite.js';
import { openPostgres } from '../../src/db/postgres.js';
import { installRealtimeSchema, startSupabaseDouble, type SupabaseDouble } from '../doubles/supabase.js';
import type { SupabaseTestTarget } from './context.js';
import { createDatabase, databaseUrl, dropDatabase } from './postgres-admin.js';

export type TestDatabaseKind = 'pglite' | 'postgres' | 'supabase';

/** The kinds describeEachDatabase registers in this vitest project. */
export const allDatabaseKinds: readonly TestDatabaseKind[] = inject('casKinds') ?? ['pglite', 'postgres'];

const supabaseTarget = (): SupabaseTestTarget => inject('casSupabase') ?? { target: 'doubles' };

/**
 * The kinds this run can test: 'pglite', 'postgres' when CAS_TEST_DATABASE_URL is set, and
 * 'supabase' in the supabase project unless its target is missing.
 */
export const testDatabaseKinds: TestDatabaseKind[] = allDatabaseKinds.filter(
  (kind) =>
    kind === 'pglite' ||
    (kind === 'postgres' && Boolean(inject('casPostgres'))) ||
    (kind === 'supabase' && supabaseTarget().target !== 'skip'),
);

/** The database behind the Supabase doubles: the PostgreSQL server when there is one, else PGlite. */
export const supabaseBackingKind = (): 'pglite' | 'postgres' =>
  inject('casPostgres') ? 'postgres' : 'pglite';

export interface TestDatabase {
  kind: TestDatabaseKind;
  db: Database;
  /** postgres only: URL of this file's own database, for worker processes started by the test. */
  url?: string;
  /** postgres only: the database's name. */
  name?: string;
  /**
   * supabase only: SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY of the API in front of `db`, for
   * loadConfig. A runtime given these (and no database) reaches `db` over HTTP only.
   */
  env?: Record<string, string>;
  /** supabase on the doubles only: the doubles, to inspect or disturb. */
  supabase?: SupabaseDouble;
  /** Closes `db` and, for postgres, drops the database. Idempotent. */
  close(): Promise<void>;
}

export interface OpenTestDatabaseOptions {
  /** Start from an empty database (no migrations, no seed) instead of the migrated template. */
  empty?: boolean;
  /** supabase only: the database behind the doubles (default: supabaseBackingKind()). */
  backing?: 'pglite' | 'postgres';
}

let pgliteTemplate: Promise<Blob> | undefined;

function loadPgliteTemplate(): Promise<Blob> {
  pgliteTemplate ??= readFile(inject('casPgliteTemplate')).then((bytes) => new Blob([bytes]));
  return pgliteTemplate;
}

/** Opens a new database of `kind`: migrated and seeded, or empty with `{ empty: true }`. */
export async function openTestDatabase(
  kind: TestDatabaseKind,
  options: OpenTestDatabaseOptions = {},
): Promise<TestDatabase> {
  if (kind === 'supabase') return openSupabaseTestDatabase(options);
  if (kind === 'pglite') {
    const db = await openPglite(options.empty ? {} : { loadDataDir: await loadPgliteTemplate() });
    return { kind, db, close: () => db.close() };
  }

  const server = inject('casPostgres');
  if (!server) {
    throw new Error(
      'PostgreSQL-server tests need CAS_TEST_DATABASE_URL (this suite should have been skipped)',
    );
  }
  const name = `${server.prefix}${randomBytes(5).toString('hex')}`;
  await createDatabase(server.adminUrl, name, options.empty ? undefined : server.template);
  const url = databaseUrl(server.adminUrl, name);
  const db = openPostgres({ connectionString: url, applicationName: 'cas-test' });
  let closing: Promise<void> | undefined;
  return {
    kind,
    db,
    url,
    name,
    close: () =>
      (closing ??= (async () => {
        await db.close();
        await dropDatabase(server.adminUrl, name);
      })()),
  };
}

async function openSupabaseTestDatabase(options: OpenTestDatabaseOptions): Promise<TestDatabase> {
  const target = supabaseTarget();
  if (target.target === 'skip') throw new Error(target.reason);
  if (target.target === 'project') return openSupabaseProject(target, options);

  const backing = await openTestDatabase(options.backing ?? supabaseBackingKind(), options);
  let double: SupabaseDouble;
  try {
    if (!options.empty) await installRealtimeSchema(backing.db);
    double = await startSupabaseDouble({ db: backing.db });
  } catch (error) {
    await backing.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    kind: 'supabase',
    db: backing.db,
    url: backing.url,
    name: backing.name,
    env: double.env,
    supabase: double,
    close: () =>
      (closing ??= (async () => {
        await double.close();
        await backing.close();
      })()),
  };
}

/**
 * A real project (npm run test:supabase): one database for the whole run, so files run one at a
 * time and each starts by emptying the cas_ tables and seeding again, as a fresh copy would be.
 */
async function openSupabaseProject(
  target: Extract<SupabaseTestTarget, { target: 'project' }>,
  options: OpenTestDatabaseOptions,
): Promise<TestDatabase> {
  if (options.empty) throw new Error('an empty database is not available on a real Supabase project');
  const db = openPostgres({ connectionString: target.dbUrl, applicationName: 'cas-test', maxConnections: 3 });
  try {
    const tables = await db.query<{ name: string }>(
      `select quote_ident(tablename) as name from pg_tables
       where schemaname = 'public' and tablename like 'cas\\_%' and tablename <> 'cas_event_sequence'`,
    );
    await db.exec(
      `truncate ${tables.map((t) => t.name).join(', ')} restart identity cascade;
       update cas_event_sequence set last_seq = 0;`,
    );
    await db.exec(await readFile(path.join(SUPABASE_DIR, 'seed.sql'), 'utf8'));
  } catch (error) {
    await db.close();
    throw error;
  }
  return {
    kind: 'supabase',
    db,
    env: { SUPABASE_URL: target.url, SUPABASE_SERVICE_ROLE_KEY: target.serviceRoleKey },
    close: () => db.close(),
  };
}

/**
 * `describe` once per database kind of this vitest project, titled `<name> [<kind>]`. Kinds this
 * run cannot test (the server without CAS_TEST_DATABASE_URL, a real Supabase project without its
 * settings) are registered with describe.skip, so they show as skipped.
 */
export function describeEachDatabase(name: string, body: (kind: TestDatabaseKind) => void): void {
  // The LangGraph project runs the runtime suites again: its titles say so.
  const runtime = process.env.CAS_RUNTIME === 'langgraph' ? ', langgraph' : '';
  for (const kind of allDatabaseKinds) {
    const title = `${name} [${kind}${runtime}]`;
    if (testDatabaseKinds.includes(kind)) describe(title, () => body(kind));
    else describe.skip(title, () => body(kind));
  }
}
