/**
 * A worker's periodic work (heartbeats, the lease sweep, the counters' fold and the agents' status
 * refresh) may be in flight when the runtime shuts down. stop() waits for it before the runtime
 * closes its pool: a fold that was still running used to go on to the status refresh on a closed
 * pool, and every such Ctrl-C logged "refreshing the task counters and agent status failed" with a
 * stack. Driven on the PostgreSQL server: a second connection locks the counters' totals table, so
 * the worker's periodic fold waits inside its transaction while the runtime shuts down.
 */
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createRuntime } from '../../src/runtime/create-runtime.js';
import type { CustomRuntime } from '../../src/runtime/custom-runtime.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';
import { FAST_RUNTIME_ENV } from '../support/runtime.js';
import { until } from '../support/until.js';

/**
 * How long the shutdown runs with the fold held before the lock is let go: long enough for it to
 * get to closing the pool (its own final refresh takes milliseconds). A shutdown that did not wait
 * for the fold closed the pool under it, and the fold's next query failed once the lock was gone.
 */
const HELD_WHILE_STOPPING_MS = 2_000;

describeEachDatabase('stop() and the periodic work in flight', (kind) => {
  // A second connection that holds a lock while the worker's transaction waits: the server only.
  if (kind !== 'postgres') {
    it.skip('needs the PostgreSQL server (a second connection holding a lock)', () => undefined);
    return;
  }
  let t: TestDatabase;
  let admin: pg.Client;
  let runtime: CustomRuntime | undefined;
  const warnings: { msg: string }[] = [];

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    admin = new pg.Client({ connectionString: t.url });
    await admin.connect();
    // The runtime owns its pool and closes it at shutdown, as `npm start` and the worker process do.
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line)) });
    runtime = await createRuntime({
      config: loadConfig({ ...FAST_RUNTIME_ENV, DATABASE_URL: t.url!, CAS_WORKERS: '1' }),
      logger,
    });
    // What start-up warns of (autovacuum off on this machine's server, say) is not this test's.
    warnings.length = 0;
  });
  afterAll(async () => {
    await runtime?.shutdown({ deadlineMs: 0 });
    await admin?.end();
    await t?.close();
  });

  it('lets a fold in flight finish before the pool closes', async () => {
    await admin.query('begin');
    // The fold writes the totals; nothing else the worker does waits for this lock.
    await admin.query('lock table cas_task_count_totals in exclusive mode');
    const task = await runtime!.executeTask({ agentId: 'planner', action: 'ping' });
    await until('the periodic fold to wait for the totals', async () => {
      const { rows } = await admin.query<{ waiting: number }>(
        `select count(*)::int as waiting from pg_locks
         where not granted and relation = 'cas_task_count_totals'::regclass`,
      );
      return rows[0]!.waiting > 0 ? true : undefined;
    });

    let stopped = false;
    const shutdown = runtime!.shutdown({ deadlineMs: 1_000 }).then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, HELD_WHILE_STOPPING_MS));
    const stoppedWhileFoldHeld = stopped;
    await admin.query('commit');
    await shutdown;
    runtime = undefined;

    expect({ stoppedWhileFoldHeld, warnings: warnings.map((warning) => warning.msg) }).toEqual({
      stoppedWhileFoldHeld: false,
      warnings: [],
    });
    // The fold went through: the task's counts are in the totals, no delta is left.
    const { rows } = await admin.query<{ status: string; tasks: number; deltas: number }>(
      `select status, tasks::int, (select count(*)::int from cas_task_count_deltas) as deltas
       from cas_task_count_totals where agent_id = 'planner' and tasks > 0`,
    );
    expect({ task: task.agentId, rows }).toEqual({
      task: 'planner',
      rows: [{ status: 'succeeded', tasks: 1, deltas: 0 }],
    });
  });
});
