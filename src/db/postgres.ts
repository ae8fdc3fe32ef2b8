import pg from 'pg';
import type { Database, Queryable, SqlParam } from './database.js';

export interface PostgresOptions {
  connectionString: string;
  /** Pool size; each process also holds one more connection while it listens. */
  maxConnections?: number;
  applicationName?: string;
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
    max: options.maxConnections ?? 10,
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
    async listen(channel, onNotify) {
      const client = await pool.connect();
      const handler = (message: pg.Notification) => {
        if (message.channel === channel) onNotify(message.payload ?? '');
      };
      client.on('notification', handler);
      await client.query(`listen ${pg.escapeIdentifier(channel)}`);
      return async () => {
        client.off('notification', handler);
        await client.query(`unlisten ${pg.escapeIdentifier(channel)}`).catch(() => undefined);
        client.release();
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
