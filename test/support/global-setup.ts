/**
 * Runs once per `vitest run`, in the main process: migrates one PGlite database and (when
 * CAS_TEST_DATABASE_URL is set) one PostgreSQL template database, so each test file starts from a
 * copy instead of migrating again. See test/support/databases.ts for the per-file side.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../src/db/migrate.js';
import { openPglite } from '../../src/db/pglite.js';
import { openPostgres } from '../../src/db/postgres.js';
import type { PostgresTestServer } from './context.js';
import {
  createDatabase,
  databaseUrl,
  dropLeftoverDatabases,
  runPrefix,
  withAdmin,
} from './postgres-admin.js';

const EXAMPLE_URL = 'postgres://postgres@127.0.0.1:5432/test';

const isCi = () => !['', '0', 'false'].includes((process.env.CI ?? '').trim().toLowerCase());

async function preparePglite(dir: string): Promise<string> {
  const db = await openPglite();
  try {
    await migrate(db);
    const dump = await db.pglite.dumpDataDir('gzip');
    const file = path.join(dir, 'pglite-template.tar.gz');
    await writeFile(file, new Uint8Array(await dump.arrayBuffer()));
    return file;
  } finally {
    await db.close();
  }
}

async function preparePostgres(adminUrl: string, prefix: string): Promise<PostgresTestServer> {
  try {
    await withAdmin(adminUrl, (client) => client.query('select 1'));
  } catch (error) {
    throw new Error(
      `CAS_TEST_DATABASE_URL=${adminUrl}: cannot connect to the PostgreSQL server ` +
        `(${(error as Error).message}). Start it, or unset CAS_TEST_DATABASE_URL (outside CI) to skip ` +
        `the PostgreSQL-server suites.`,
      { cause: error },
    );
  }
  const dropped = await dropLeftoverDatabases(adminUrl);
  if (dropped.length > 0) console.log(`[cas tests] dropped ${dropped.length} leftover test database(s)`);

  const template = `${prefix}template`;
  await createDatabase(adminUrl, template);
  // One connection, closed before any file copies the template (copying needs it unused).
  const db = openPostgres({ connectionString: databaseUrl(adminUrl, template), maxConnections: 1 });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  return { adminUrl, template, prefix };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const adminUrl = process.env.CAS_TEST_DATABASE_URL?.trim() || undefined;
  if (!adminUrl && isCi()) {
    throw new Error(
      `CI is set but CAS_TEST_DATABASE_URL is not: the PostgreSQL-server suites must run in CI. ` +
        `Set CAS_TEST_DATABASE_URL (e.g. ${EXAMPLE_URL}).`,
    );
  }

  const dir = await mkdtemp(path.join(tmpdir(), 'cas-test-'));
  const prefix = runPrefix();
  /** Drops every database of this run (the template, and any a test file failed to drop). */
  const cleanup = async () => {
    if (adminUrl) await dropLeftoverDatabases(adminUrl, prefix).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };

  // Both templates at once (the PGlite one is mostly WASM start-up), but wait for both to settle
  // before cleaning up after a failure.
  const [pglite, postgres] = await Promise.allSettled([
    preparePglite(dir),
    adminUrl ? preparePostgres(adminUrl, prefix) : Promise.resolve(null),
  ]);
  if (pglite.status === 'rejected' || postgres.status === 'rejected') {
    await cleanup();
    throw postgres.status === 'rejected' ? postgres.reason : (pglite as PromiseRejectedResult).reason;
  }
  const server = postgres.value;
  project.provide('casPgliteTemplate', pglite.value);
  project.provide('casPostgres', server);

  return async () => {
    await cleanup();
    // Printed at teardown so it lands under the summary, next to the skipped count.
    if (!server) {
      console.log(
        `[cas tests] PostgreSQL-server suites skipped (CAS_TEST_DATABASE_URL is not set); ` +
          `run them with: CAS_TEST_DATABASE_URL=${EXAMPLE_URL} npm test`,
      );
    }
  };
}
