/**
 * Creating and dropping the PostgreSQL-server databases tests run against. Every database a run
 * creates is named `cas_test_<pid>_<epoch seconds>_<suffix>`, where pid is the vitest main process,
 * so a later run can tell leftovers (their run is gone) from databases of a run still going.
 */
import pg from 'pg';

const NAME_PREFIX = 'cas_test_';
const RUN_NAME = /^cas_test_(\d+)_(\d+)_[a-z0-9_]+$/;
/** Databases older than this are dropped even if a process with their pid is alive (pid reuse). */
const STALE_AFTER_SECONDS = 24 * 60 * 60;

export function runPrefix(pid = process.pid, startedAt = Date.now()): string {
  return `${NAME_PREFIX}${pid}_${Math.floor(startedAt / 1000)}_`;
}

/** The admin URL with its database replaced by `database`. */
export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** Runs `work` on a connection of its own to `adminUrl`, closed afterwards. */
export async function withAdmin<T>(
  adminUrl: string,
  work: (client: pg.Client) => Promise<T>,
  applicationName = 'cas-test-admin',
): Promise<T> {
  const client = new pg.Client({
    connectionString: adminUrl,
    connectionTimeoutMillis: 5_000,
    application_name: applicationName,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `create database <name> [template <template>]`. Copying a template fails with 55006 while anyone
 * (an autovacuum worker, a closing pool) is still connected to it, so that error is retried.
 */
export async function createDatabase(adminUrl: string, name: string, template?: string): Promise<void> {
  const sql =
    `create database ${pg.escapeIdentifier(name)}` +
    (template ? ` template ${pg.escapeIdentifier(template)}` : '');
  await withAdmin(adminUrl, async (client) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(sql);
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== '55006' || attempt >= 20) throw error;
        await sleep(100 * attempt);
      }
    }
  });
}

/** Drops the database, disconnecting whoever is still connected. */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await withAdmin(adminUrl, (client) =>
    client.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`),
  );
}

/** Whether pids in database names can be checked here: the server runs on this machine. */
function isLocalServer(adminUrl: string): boolean {
  const host = new URL(adminUrl).hostname.replace(/^\[|\]$/g, '');
  return ['', 'localhost', '127.0.0.1', '::1'].includes(host);
}

/** Whether a process with this pid runs on this machine (leftover databases name their creator's pid). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Drops cas_test_ databases that earlier runs left behind: those of a vitest process no longer
 * running (checked only when the server is on this machine), those older than a day, and (when
 * given) those with `ownPrefix`.
 */
export async function dropLeftoverDatabases(adminUrl: string, ownPrefix?: string): Promise<string[]> {
  const now = Date.now() / 1000;
  const local = isLocalServer(adminUrl);
  return withAdmin(adminUrl, async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      `select datname from pg_database where datname like 'cas\\_test\\_%' order by datname`,
    );
    const dropped: string[] = [];
    for (const { datname } of rows) {
      const match = RUN_NAME.exec(datname);
      if (!match) continue;
      const pid = Number(match[1]);
      const startedAt = Number(match[2]);
      const ours = ownPrefix !== undefined && datname.startsWith(ownPrefix);
      const stale =
        (local && pid !== process.pid && !processIsAlive(pid)) || now - startedAt > STALE_AFTER_SECONDS;
      if (!ours && !stale) continue;
      try {
        await client.query(`drop database if exists ${pg.escapeIdentifier(datname)} with (force)`);
        dropped.push(datname);
      } catch {
        // Another run dropping the same leftover at the same moment; not ours to worry about.
      }
    }
    return dropped;
  });
}
