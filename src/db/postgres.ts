import pg from 'pg';
import type { Database, Queryable, SqlParam } from './database.js';

export interface PostgresOptions {
  connectionString: string;
  /**
   * Pool size (default API_POOL_CONNECTIONS; a process with workers wants poolSize(config)). Each
   * process also holds one more connection while it listens.
   */
  maxConnections?: number;
  applicationName?: string;
}

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

const queryable = (client: pg.Pool | pg.PoolClient): Queryable => ({
  async query<Row>(sql: string, params: readonly SqlParam[] = []) {
    const result = await client.query(sql, params as unknown[]);
    return result.rows as Row[];
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
  let closed = false;

  return {
    kind: 'postgres',
    pool,
    ...queryable(pool),
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const result = await work(queryable(client));
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
