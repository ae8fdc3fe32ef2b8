/** graphile-worker as a QueueDriver, in a database of its own. */
import { makeWorkerUtils, runMigrations, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import type { QueueDriver } from './queue-measure.js';

/**
 * Installs graphile-worker's schema, plus (for latency runs) a trigger that keeps each job's
 * created_at and the time its claim wrote it: graphile-worker deletes finished jobs, and the
 * handler only sees millisecond Dates. graphile-worker sets locked_at to now(), the time its claim
 * statement began; CAS's started_at is the clock when its claim's UPDATE writes the task. The
 * trigger fires on that UPDATE and records clock_timestamp(), so both sides are measured at the same
 * point of their claim (locked_at would leave out the claim statement's own work).
 */
export async function prepareGraphileDatabase(url: string, recordStarts: boolean): Promise<void> {
  await runMigrations({ connectionString: url, logger: undefined });
  if (!recordStarts) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`
      create table bench_job_starts (job_id bigint primary key, created_at timestamptz, claimed_at timestamptz);
      create function bench_record_start() returns trigger language plpgsql as $$
      begin
        insert into bench_job_starts values (new.id, new.created_at, clock_timestamp()) on conflict do nothing;
        return new;
      end $$;
      create trigger bench_record_start after update of locked_at on graphile_worker._private_jobs
        for each row when (old.locked_at is null and new.locked_at is not null)
        execute function bench_record_start();`);
  } finally {
    await client.end();
  }
}

export interface GraphileDriver extends QueueDriver {
  close(): Promise<void>;
}

export async function graphileQueueDriver(label: string, url: string): Promise<GraphileDriver> {
  // One pool for our queries and graphile-worker's utils, ended (and awaited) by close(): a pool
  // graphile-worker makes itself is ended without waiting, and dropping the database right after
  // could terminate a client still closing, whose error then had no handler and ended the bench.
  const pool = new pg.Pool({ connectionString: url, max: 2, application_name: 'cas-bench-graphile' });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const utils: WorkerUtils = await makeWorkerUtils({ pgPool: pool });
  return {
    label,
    async enqueueOne() {
      await utils.addJob('noop', {});
    },
    async enqueueMany(count) {
      // The payload refers to g: a call without it would run once and be reused for every row.
      await pool.query(
        `select count(*) from generate_series(1, $1::int) as g
         cross join lateral graphile_worker.add_job('noop', json_build_object('i', g)) as j`,
        [count],
      );
    },
    async anyLeft() {
      const { rows } = await pool.query<{ left: boolean }>(
        'select exists (select 1 from graphile_worker._private_jobs) as left',
      );
      return rows[0]!.left;
    },
    async remaining() {
      const { rows } = await pool.query<{ n: number }>(
        'select count(*)::int as n from graphile_worker._private_jobs',
      );
      return rows[0]!.n;
    },
    async startLatencies() {
      const { rows } = await pool.query<{ ms: number }>(
        `select (extract(epoch from claimed_at - created_at) * 1000)::float8 as ms
         from bench_job_starts order by job_id`,
      );
      return rows.map((row) => row.ms);
    },
    async close() {
      await utils.release();
      await pool.end();
    },
  };
}
