/**
 * A completion batch carries the worker's next claim (src/runtime/worker.ts, completeAndClaim): the
 * attempts it completes free their slots and it claims queued tasks into them. When such a batch
 * returns after stop() began, the worker hands what it claimed back to the queue instead of
 * starting it. Driven through the real store on the PostgreSQL server: a second connection holds
 * the event log's sequence row, so the batch waits inside its transaction while stop() begins;
 * then the row is let go. No test-only code path, no timing: each step waits for what the database shows.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { createRuntime } from '../../src/runtime/create-runtime.js';
import type { CustomRuntime } from '../../src/runtime/custom-runtime.js';
import { describeEachDatabase } from '../support/databases.js';
import { FAST_RUNTIME_ENV, openTestRuntime, type TestRuntime } from '../support/runtime.js';

/** Ceiling for each wait: generous, for a loaded machine. */
const CEILING_MS = 60_000;

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + CEILING_MS;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A single worker with one slot; leases long enough that none runs out while a row is held. */
const WORKER_ENV = { CAS_WORKERS: '1', CAS_WORKER_CONCURRENCY: '1', CAS_TASK_LEASE_MS: '30000' };

describeEachDatabase('stop() while a completion batch claims', (kind) => {
  // A second connection that holds a row while the runtime's transaction waits: the server only.
  if (kind !== 'postgres') {
    it.skip('needs the PostgreSQL server (a second connection holding a lock)', () => undefined);
    return;
  }
  let t: TestRuntime;
  let admin: pg.Client;
  const others: CustomRuntime[] = [];

  beforeAll(async () => {
    t = await openTestRuntime(kind, WORKER_ENV);
    admin = new pg.Client({ connectionString: t.testDb.url });
    await admin.connect();
  });
  afterAll(async () => {
    await Promise.all(others.map((runtime) => runtime.shutdown({ deadlineMs: 1_000 })));
    await admin?.end();
    await t?.close();
  });

  const task = async (id: string) =>
    (
      await admin.query<{
        status: string;
        worker_id: string | null;
        lease_token: string | null;
        attempts: number;
      }>('select status, worker_id, lease_token, attempts from cas_tasks where id = $1', [id])
    ).rows[0]!;
  const events = async (id: string) =>
    (
      await admin.query<{ type: string; payload: Record<string, unknown> | null }>(
        'select event_type as type, payload from cas_agent_events where task_id = $1 order by seq',
        [id],
      )
    ).rows;

  it(
    'the tasks it claimed go back to the queue, and another worker runs them',
    { timeout: 180_000 },
    async () => {
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      let finish!: () => void;
      const gate = new Promise<void>((resolve) => (finish = resolve));
      t.runtime.defineActions('analyst', {
        gated: async () => {
          started();
          await gate;
          return { done: true };
        },
      });
      const first = await t.runtime.executeTask({ agentId: 'analyst', action: 'gated' });
      await running;
      // Due now, but the worker's one slot is taken: it waits for the slot the completion frees.
      const next = await t.runtime.executeTask({ agentId: 'analyst', action: 'ping' });
      expect((await task(next.id)).status).toBe('queued');

      // Hold the event log's sequence row: the completion batch appends the task's events, so it
      // waits for the row inside its transaction. (Not the task's row: under LangGraph the attempt's
      // exit checkpoint writes that one first, and would wait instead of the batch.)
      const holder = new pg.Client({ connectionString: t.testDb.url });
      await holder.connect();
      try {
        await holder.query('begin');
        await holder.query('select last_seq from cas_event_sequence for update');
        const { rows } = await holder.query<{ pid: number }>('select pg_backend_pid() as pid');
        finish();
        await until(
          async () =>
            (
              await admin.query(
                `select count(*)::int as n from pg_stat_activity
               where $1 = any(pg_blocking_pids(pid)) and query like '%cas_complete_and_claim_tasks%'`,
                [rows[0]!.pid],
              )
            ).rows[0].n as number,
          (blocked) => blocked === 1,
          'the completion batch to wait for the held row',
        );
        // stop() begins (it takes stock synchronously once shutdown's first await has passed)...
        const stopped = t.runtime.shutdown({ deadlineMs: 5_000 });
        await new Promise((resolve) => setImmediate(resolve));
        // ...and only then does the batch go on: it completes the task and claims the next one.
        await holder.query('rollback');
        await stopped;
      } finally {
        await holder.end();
      }

      expect((await task(first.id)).status).toBe('succeeded');
      // Handed back: queued, no worker, no lease, its attempt not counted; not running with a lease
      // that nobody renews, not lost.
      expect(await task(next.id)).toEqual({
        status: 'queued',
        worker_id: null,
        lease_token: null,
        attempts: 0,
      });
      const trail = await events(next.id);
      expect(trail.map((event) => event.type)).toEqual([
        'task_queued',
        'task_started',
        'task_retry_scheduled',
      ]);
      expect(trail.at(-1)!.payload).toMatchObject({ reason: 'released' });

      // Another worker (another runtime on the same database) claims it and runs it once.
      const other = await createRuntime({
        config: loadConfig({ ...FAST_RUNTIME_ENV, ...WORKER_ENV, DATABASE_URL: t.testDb.url! }),
        logger: silentLogger(),
      });
      others.push(other);
      const done = await until(
        () => task(next.id),
        (row) => row.status === 'succeeded',
        'the released task to run elsewhere',
      );
      expect(done.attempts).toBe(1);
      expect((await events(next.id)).map((event) => event.type)).toEqual([
        'task_queued',
        'task_started',
        'task_retry_scheduled',
        'task_started',
        'task_completed',
      ]);
    },
  );
});
