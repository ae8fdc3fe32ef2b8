/**
 * The benchmark's own databases on the PostgreSQL server, named `cas_bench_<pid>_<label>` so a
 * later run can drop what a crashed run left behind (its pid is gone). All are dropped at the end.
 */
import pg from 'pg';
import {
  databaseUrl as databaseUrlAt,
  dropDatabase,
  processIsAlive,
  withAdmin as withAdminAt,
} from '../../test/support/postgres-admin.js';

/** The server to benchmark against; any database on it works as the admin connection. */
export const ADMIN_URL =
  process.env.BENCH_DATABASE_URL?.trim() ||
  process.env.CAS_TEST_DATABASE_URL?.trim() ||
  'postgres://postgres@127.0.0.1:5432/test';

const PREFIX = 'cas_bench_';
const OWN_PREFIX = `${PREFIX}${process.pid}_`;
const NAME = /^cas_bench_(\d+)_[a-z0-9_]+$/;

export const databaseUrl = (name: string, adminUrl = ADMIN_URL) => databaseUrlAt(adminUrl, name);

export const withAdmin = <T>(work: (client: pg.Client) => Promise<T>) =>
  withAdminAt(ADMIN_URL, work, 'cas-bench-admin');

export async function serverVersion(): Promise<string> {
  return withAdmin(async (client) => {
    const { rows } = await client.query<{ version: string }>('select version()');
    return rows[0]!.version;
  });
}

/** Creates `cas_bench_<pid>_<label>` (a copy of `template` when given) and returns its name. */
export async function createBenchDatabase(label: string, template?: string): Promise<string> {
  const name = `${OWN_PREFIX}${label}`;
  const sql =
    `create database ${pg.escapeIdentifier(name)}` +
    (template ? ` template ${pg.escapeIdentifier(template)}` : '');
  await withAdmin(async (client) => {
    await client.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(sql);
        return;
      } catch (error) {
        // 55006: someone (autovacuum, a closing pool) still uses the template; it goes away.
        if ((error as { code?: string }).code !== '55006' || attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  });
  return name;
}

export const dropBenchDatabase = (name: string) => dropDatabase(ADMIN_URL, name);

/** Drops this run's databases, and those of earlier runs whose process is gone. */
export async function dropBenchDatabases(): Promise<string[]> {
  return withAdmin(async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      `select datname from pg_database where datname like 'cas\\_bench\\_%' order by datname`,
    );
    const dropped: string[] = [];
    for (const { datname } of rows) {
      const match = NAME.exec(datname);
      if (!match) continue;
      const pid = Number(match[1]);
      if (pid !== process.pid && processIsAlive(pid)) continue;
      await client.query(`drop database if exists ${pg.escapeIdentifier(datname)} with (force)`);
      dropped.push(datname);
    }
    return dropped;
  });
}

/**
 * Deadlocks PostgreSQL detected in a database since its creation (pg_stat_database; backends
 * report at the end of their transactions, so read it after the workers have stopped).
 */
export async function deadlocksIn(name: string): Promise<number> {
  return withAdmin(async (client) => {
    const { rows } = await client.query<{ deadlocks: string | null }>(
      'select deadlocks from pg_stat_database where datname = $1',
      [name],
    );
    return Number(rows[0]?.deadlocks ?? 0);
  });
}
