import pg from 'pg';
import type { Database, Queryable, QueryOptions, SqlParam } from './database.js';
import { parseTimestamptz } from './timestamps.js';

export interface PostgresOptions {
  connectionString: string;
  /**
   * Pool size (default API_POOL_CONNECTIONS; a process with workers wants poolSize(config)). Each
   * process also holds one more connection while it listens.
   */
  maxConnections?: number;
  applicationName?: string;
  /**
   * Keep the statements asked to be prepared (QueryOptions.prepare) as named prepared statements
   * on each connection (CAS_PREPARED_STATEMENTS, default on). Off behind a transaction pooler that
   * does not carry prepared statements from one transaction to the next (see docs/operations.md).
   */
  preparedStatements?: boolean;
}

/**
 * Most statement texts a pool prepares; any beyond run unprepared. The SQL-function calls are a
 * few hundred texts at most (one per function and set of arguments given), and each connection
 * keeps every statement it prepared until it closes.
 */
export const MAX_PREPARED_STATEMENTS = 1000;

/**
 * The names of a pool's prepared statements, one per text, the same on every connection
 * (node-postgres prepares a name on a connection the first time it runs there).
 */
class PreparedStatementNames {
  private readonly names = new Map<string, string>();
  private issued = 0;

  /** The statement's name, or null once the pool has named as many as it may. */
  nameOf(sql: string): string | null {
    const name = this.names.get(sql);
    if (name !== undefined || this.names.size >= MAX_PREPARED_STATEMENTS) return name ?? null;
    return this.rename(sql);
  }

  /** A new name for `sql`: each connection prepares it afresh under that name. */
  rename(sql: string): string {
    const name = `cas_statement_${++this.issued}`;
    this.names.set(sql, name);
    return name;
  }
}

/**
 * PostgreSQL refuses to run a prepared statement whose result columns changed since it was
 * prepared (a migration replaced a function it calls, by another process of a rolling deploy).
 */
const changedResultType = (error: unknown) =>
  (error as { code?: unknown } | null)?.code === '0A000' &&
  /cached plan must not change result type/.test((error as Error).message);

/** Connections for the API side of a process: requests, subscription catch-up reads, health checks. */
export const API_POOL_CONNECTIONS = 10;
/** Connections each worker loop uses besides its tasks: claiming, and the lease heartbeat or sweep. */
export const WORKER_LOOP_CONNECTIONS = 2;

/**
 * The pool a process needs so that no task waits for a connection: every running task may be
 * writing at once (CAS_WORKERS × CAS_WORKER_CONCURRENCY), each worker loop claims and heartbeats
 * beside them, and the API serves requests:
 * CAS_WORKERS × (CAS_WORKER_CONCURRENCY + WORKER_LOOP_CONNECTIONS) + API_POOL_CONNECTIONS.
 */
export function poolSize(load: { workers: number; workerConcurrency: number }): number {
  return load.workers * (load.workerConcurrency + WORKER_LOOP_CONNECTIONS) + API_POOL_CONNECTIONS;
}

// Sequence numbers and counts are bigint; ours stay far below 2^53, so numbers are safe and simpler.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
// Timestamps read by position, as postgres-date reads them (src/db/timestamps.ts).
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, parseTimestamptz);

/**
 * `statements` names the prepared ones (null: none is prepared). `inTransaction`: a failed
 * statement has aborted the transaction, so a statement whose result changed is not run again.
 */
const queryable = (
  client: pg.Pool | pg.PoolClient,
  statements: PreparedStatementNames | null,
  inTransaction: boolean,
): Queryable => ({
  async query<Row>(sql: string, params: readonly SqlParam[] = [], options?: QueryOptions) {
    const values = params as unknown[];
    const names = options?.prepare ? statements : null;
    const name = names?.nameOf(sql);
    if (!names || !name) return (await client.query(sql, values)).rows as Row[];
    try {
      return (await client.query({ name, text: sql, values })).rows as Row[];
    } catch (error) {
      if (!changedResultType(error)) throw error;
      // Prepared again under a new name on every connection; the old one is unused from now on.
      const renamed = names.rename(sql);
      if (inTransaction) throw error;
      return (await client.query({ name: renamed, text: sql, values })).rows as Row[];
    }
  },
  async exec(sql: string) {
    await client.query(sql);
  },
});

export function openPostgres(options: PostgresOptions): Database & { pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? API_POOL_CONNECTIONS,
    application_name: options.applicationName ?? 'cas-runtime-api',
  });
  // A connection dropped while idle (server restart, pg_terminate_backend) must not crash the process;
  // the pool replaces it on the next checkout.
  pool.on('error', () => undefined);
  const statements = options.preparedStatements === false ? null : new PreparedStatementNames();
  let closed = false;

  return {
    kind: 'postgres',
    pool,
    ...queryable(pool, statements, false),
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const result = await work(queryable(client, statements, true));
        await client.query('commit');
        return result;
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    listen: (channel, onNotify) => listenWithReconnect(options, channel, onNotify, () => closed),
    poolStats: () => ({
      inUse: pool.totalCount - pool.idleCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
    }),
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

const RECONNECT_DELAYS_MS = [100, 250, 500, 1000, 2000, 5000];

/**
 * LISTEN on a connection of its own, outside the pool. When the connection drops (server restart,
 * pg_terminate_backend) it reconnects with backoff and listens again; notices sent meanwhile are
 * lost, which is why every reader re-reads the event log rather than trusting notices.
 */
async function listenWithReconnect(
  options: PostgresOptions,
  channel: string,
  onNotify: (payload: string) => void,
  poolClosed: () => boolean,
): Promise<() => Promise<void>> {
  let client: pg.Client | null = null;
  let stopped = false;

  const connect = async () => {
    const next = new pg.Client({
      connectionString: options.connectionString,
      application_name: `${options.applicationName ?? 'cas-runtime-api'}:listen`,
    });
    next.on('notification', (message) => {
      if (message.channel === channel) onNotify(message.payload ?? '');
    });
    next.on('error', () => void reconnect(next));
    await next.connect();
    await next.query(`listen ${pg.escapeIdentifier(channel)}`);
    client = next;
  };

  const reconnect = async (lost: pg.Client) => {
    if (client !== lost) return;
    client = null;
    await lost.end().catch(() => undefined);
    for (let attempt = 0; !stopped && !poolClosed(); attempt += 1) {
      await new Promise((resolve) =>
        setTimeout(resolve, RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)]),
      );
      try {
        await connect();
        return;
      } catch {
        // The server is still away; try again after the next delay.
      }
    }
  };

  await connect();
  return async () => {
    stopped = true;
    const current = client;
    client = null;
    await current?.end().catch(() => undefined);
  };
}
