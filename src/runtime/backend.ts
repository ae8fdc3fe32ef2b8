import type { Database, PoolStats } from '../db/database.js';
import { migrate, migrationsApplied } from '../db/migrate.js';
import { sqlFunctionsOver, type SqlFunctions } from '../db/sql-functions.js';
import { databaseChangeFeed, type ChangeFeed } from '../feed/change-feed.js';
import type { Logger } from '../logger.js';

/**
 * How the runtime reaches its data and its change feed. The same SQL functions and the same event
 * log behind each: PGlite or Postgres through SQL, Supabase through PostgREST RPC and Realtime.
 */
export interface Backend {
  readonly kind: 'pglite' | 'postgres' | 'supabase';
  readonly sql: SqlFunctions;
  readonly feed: ChangeFeed;
  /** Makes the schema ready: applies migrations and seed, or checks they were deployed. */
  prepare(): Promise<void>;
  /** One database round trip; throws when the database cannot be reached. */
  migrationsApplied(): Promise<boolean>;
  /** Closes connections. Idempotent. */
  close(): Promise<void>;
  /** Connections (or requests in flight) by state, for GET /metrics; null without a pool. */
  poolStats(): PoolStats | null;
}

/**
 * Where autovacuum will not run on the cas_ tables of a PostgreSQL server: off for the whole server,
 * or turned off for some tables. PGlite has none (src/db/pglite.ts vacuums it instead).
 */
const AUTOVACUUM_OFF = `
  select not current_setting('autovacuum')::boolean as server_off,
         coalesce(array_agg(c.relname::text order by c.relname)
                  filter (where 'autovacuum_enabled=false' = any (c.reloptions)), '{}') as tables_off
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = current_schema() and c.relkind = 'r' and c.relname like 'cas\\_%'`;

/**
 * Warns when autovacuum will not run: every task write leaves dead rows (the task counters' delta
 * rows are deleted every second, each status change leaves an old row version and index entries)
 * that only a vacuum gives back, so tables and indexes grow and the reads that cross them (task
 * counts) slow down for as long as the database runs; and no statistics are gathered, so the
 * planner guesses (a page of one agent's tasks read all of that agent's rows to sort them).
 */
async function warnIfAutovacuumOff(db: Database, logger: Logger): Promise<void> {
  const [row] = await db.query<{ server_off: boolean; tables_off: string[] }>(AUTOVACUUM_OFF);
  if (!row || (!row.server_off && row.tables_off.length === 0)) return;
  const where = row.server_off ? 'on this PostgreSQL server' : `for ${row.tables_off.join(', ')}`;
  logger.warn(
    `autovacuum is off ${where}: the dead rows every task leaves are never given back and the ` +
      "planner's statistics never gathered, so reads slow down as tasks pile up. Turn it on, or run " +
      'VACUUM ANALYZE on the cas_ tables regularly (docs/operations.md)',
  );
}

/** A backend on a database this process connects to (embedded PGlite or Postgres). */
export function databaseBackend(db: Database, logger: Logger): Backend {
  return {
    kind: db.kind,
    sql: sqlFunctionsOver(db),
    feed: databaseChangeFeed(db, logger),
    async prepare() {
      const { applied, changed } = await migrate(db);
      if (applied.length > 0) logger.info({ applied }, 'migrations applied');
      if (changed.length > 0) {
        logger.warn(
          { changed },
          'applied migrations changed on disk since; this database runs their old text',
        );
      }
      if (db.kind === 'postgres') await warnIfAutovacuumOff(db, logger);
    },
    migrationsApplied: () => migrationsApplied(db),
    close: () => db.close(),
    poolStats: () => db.poolStats?.() ?? null,
  };
}
