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
    },
    migrationsApplied: () => migrationsApplied(db),
    close: () => db.close(),
    poolStats: () => db.poolStats?.() ?? null,
  };
}
