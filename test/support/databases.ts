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
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, inject } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { openPglite } from '../../src/db/pglite.js';
import { openPostgres } from '../../src/db/postgres.js';
import type {} from './context.js';
import { createDatabase, databaseUrl, dropDatabase } from './postgres-admin.js';

export type TestDatabaseKind = 'pglite' | 'postgres';

export const allDatabaseKinds: readonly TestDatabaseKind[] = ['pglite', 'postgres'];

/** The kinds this run can test: always 'pglite', plus 'postgres' when CAS_TEST_DATABASE_URL is set. */
export const testDatabaseKinds: TestDatabaseKind[] = inject('casPostgres')
  ? ['pglite', 'postgres']
  : ['pglite'];

export interface TestDatabase {
  kind: TestDatabaseKind;
  db: Database;
  /** postgres only: URL of this file's own database, for worker processes started by the test. */
  url?: string;
  /** postgres only: the database's name. */
  name?: string;
  /** Closes `db` and, for postgres, drops the database. Idempotent. */
  close(): Promise<void>;
}

export interface OpenTestDatabaseOptions {
  /** Start from an empty database (no migrations, no seed) instead of the migrated template. */
  empty?: boolean;
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

/**
 * `describe` once per database kind, titled `<name> [<kind>]`. Kinds this run cannot test (the
 * server without CAS_TEST_DATABASE_URL) are registered with describe.skip, so they show as skipped.
 */
export function describeEachDatabase(name: string, body: (kind: TestDatabaseKind) => void): void {
  for (const kind of allDatabaseKinds) {
    const title = `${name} [${kind}]`;
    if (testDatabaseKinds.includes(kind)) describe(title, () => body(kind));
    else describe.skip(title, () => body(kind));
  }
}
