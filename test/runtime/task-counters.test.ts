/**
 * The per-agent, per-status task counters (cas_task_counts, read by countTasks and totalCount) and
 * the hourly rollups, as the insert trigger keeps them: concurrent first tasks of an agent, an
 * enqueue its idempotency key turns into no insert, and a row inserted by hand already final; and
 * folding their deltas into the totals, which changes no count.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { until } from '../support/until.js';
import type { TaskCountFilter } from '../../src/domains/task/task.js';

/** Counters against the rows they count, for one agent: both must agree. */
async function countersOf(t: TestRuntime, agentId: string) {
  const counters = await t.db.query<{ status: string; tasks: number }>(
    `select status, tasks::int as tasks from cas_task_counts where agent_id = $1 and tasks <> 0 order by status`,
    [agentId],
  );
  const rows = await t.db.query<{ status: string; tasks: number }>(
    `select status, count(*)::int as tasks from cas_tasks where agent_id = $1 group by status order by status`,
    [agentId],
  );
  return { counters, rows };
}

describeEachDatabase('task counters', (kind) => {
  let t: TestRuntime;
  beforeAll(async () => {
    // No worker: the tasks stay as they are inserted.
    t = await openTestRuntime(kind, { CAS_WORKERS: '0' });
  });
  afterAll(() => t.close());

  it("count an agent's first tasks, enqueued at once, each once", async () => {
    await t.runtime.registerAgent({ id: 'counted', name: 'Counted', role: 'qa' });
    await Promise.all(
      Array.from({ length: 20 }, () => t.runtime.executeTask({ agentId: 'counted', action: 'ping' })),
    );
    const { counters, rows } = await countersOf(t, 'counted');
    expect(counters).toEqual([{ status: 'queued', tasks: 20 }]);
    expect(counters).toEqual(rows);
    expect(await t.runtime.countTasks({ agentId: 'counted', statuses: ['queued'] })).toBe(20);
  });

  it('count nothing for an enqueue that its idempotency key answers with the earlier task', async () => {
    await t.runtime.registerAgent({ id: 'keyed', name: 'Keyed', role: 'qa' });
    const request = { agentId: 'keyed', action: 'ping', idempotencyKey: 'once' };
    const first = await t.runtime.executeTask(request);
    expect((await t.runtime.executeTask(request)).id).toBe(first.id);
    expect((await countersOf(t, 'keyed')).counters).toEqual([{ status: 'queued', tasks: 1 }]);
  });

  it('count and roll up a row inserted by hand already final', async () => {
    await t.runtime.registerAgent({ id: 'imported', name: 'Imported', role: 'qa' });
    await t.runtime.executeTask({ agentId: 'imported', action: 'ping' });
    await t.db.exec(
      `insert into cas_tasks (agent_id, action, status, attempts, started_at, finished_at, duration_ms)
       values ('imported', 'ping', 'succeeded', 1, now() - interval '2 seconds', now(), 2000)`,
    );
    const { counters, rows } = await countersOf(t, 'imported');
    expect(counters).toEqual([
      { status: 'queued', tasks: 1 },
      { status: 'succeeded', tasks: 1 },
    ]);
    expect(counters).toEqual(rows);
    const [rollup] = await t.db.query<{ succeeded: number; duration_count: number }>(
      `select sum(succeeded)::int as succeeded, sum(duration_count)::int as duration_count
       from cas_task_rollups where agent_id = 'imported'`,
    );
    expect(rollup).toEqual({ succeeded: 1, duration_count: 1 });
  });

  it('fold the deltas into the totals without changing a count, one folder at a time', async () => {
    await t.runtime.registerAgent({ id: 'folded', name: 'Folded', role: 'qa' });
    await Promise.all(
      Array.from({ length: 5 }, () => t.runtime.executeTask({ agentId: 'folded', action: 'ping' })),
    );
    await t.db.exec(
      `insert into cas_tasks (agent_id, action, status, attempts, started_at, finished_at, duration_ms)
       values ('folded', 'ping', 'failed', 1, now() - interval '1 second', now(), 1000)`,
    );
    const rollupOf = async () =>
      (
        await t.db.query<{ hours: number; failed: number; duration_ms_sum: number }>(
          `select count(*)::int as hours, sum(failed)::int as failed, sum(duration_ms_sum)::float8 as duration_ms_sum
           from cas_task_rollups where agent_id = 'folded'`,
        )
      )[0];
    const deltasOf = async () =>
      (
        await t.db.query<{ n: number }>(
          `select (select count(*) from cas_task_count_deltas where agent_id = 'folded')
                + (select count(*) from cas_task_rollup_deltas where agent_id = 'folded') as n`,
        )
      )[0]!.n;
    const before = await countersOf(t, 'folded');
    const rollupBefore = await rollupOf();
    expect(before.counters).toEqual([
      { status: 'failed', tasks: 1 },
      { status: 'queued', tasks: 5 },
    ]);
    expect(rollupBefore).toEqual({ hours: 1, failed: 1, duration_ms_sum: 1000 });
    expect(Number(await deltasOf())).toBeGreaterThan(0);

    const [fold] = await t.db.query<{ folded: number }>('select cas_fold_task_counters() as folded');
    expect(fold!.folded).toBeGreaterThan(0);
    expect(Number(await deltasOf())).toBe(0);
    expect(await countersOf(t, 'folded')).toEqual(before);
    expect(await rollupOf()).toEqual(rollupBefore);
    const [again] = await t.db.query<{ folded: number }>('select cas_fold_task_counters() as folded');
    expect(again!.folded).toBe(0);

    // A delta that takes from a total (a queued task cancelled: queued -1) folds into it.
    const [queued] = await t.db.query<{ id: string }>(
      `select id from cas_tasks where agent_id = 'folded' and status = 'queued' limit 1`,
    );
    await t.runtime.cancelTask(queued!.id);
    const cancelled = await countersOf(t, 'folded');
    expect(cancelled.counters).toEqual(cancelled.rows);
    await t.db.query('select cas_fold_task_counters()');
    expect(await countersOf(t, 'folded')).toEqual(cancelled);
    expect(cancelled.counters).toContainEqual({ status: 'queued', tasks: 4 });
  });

  it('count tasks for every filter from folded totals and unfolded deltas alike, as the rows are', async () => {
    await t.runtime.registerAgent({ id: 'filtered', name: 'Filtered', role: 'qa' });
    const enqueue = (n: number) =>
      Promise.all(
        Array.from({ length: n }, () => t.runtime.executeTask({ agentId: 'filtered', action: 'ping' })),
      );
    const filters: TaskCountFilter[] = [
      {},
      { agentId: 'filtered' },
      { agentId: 'filtered', statuses: ['queued'] },
      { agentId: 'filtered', statuses: ['queued', 'cancelled'] },
      { agentId: 'filtered', statuses: ['succeeded'] },
      { statuses: ['cancelled'] },
      { agentId: 'no-such-agent' },
    ];
    /** Each filter's count from the counters, and from the task rows themselves. */
    const counts = () =>
      Promise.all(
        filters.map(async (filter) => {
          const [row] = await t.db.query<{ n: number }>(
            `select count(*)::int as n from cas_tasks
             where ($1::text is null or agent_id = $1) and ($2::text[] is null or status = any ($2))`,
            [filter.agentId ?? null, filter.statuses ?? null],
          );
          return { filter, counted: await t.runtime.countTasks(filter), rows: row!.n };
        }),
      );
    const agree = async () => {
      const all = await counts();
      expect(all.map(({ filter, counted }) => ({ filter, n: counted }))).toEqual(
        all.map(({ filter, rows }) => ({ filter, n: rows })),
      );
      return all;
    };

    // Folded: three queued, one of them cancelled (a delta that takes from a folded total).
    const [first] = await enqueue(3);
    await t.db.query('select cas_fold_task_counters()');
    await t.runtime.cancelTask(first!.id);
    // Unfolded: two more queued.
    await enqueue(2);
    const mixed = await agree();
    expect(mixed.find(({ filter }) => filter.statuses?.join() === 'queued,cancelled')?.counted).toBe(5);
    expect(mixed.at(-1)!.counted).toBe(0);
    await t.db.query('select cas_fold_task_counters()');
    expect(await agree()).toEqual(mixed);
  });

  it("give an agent's all-time metrics from its own row and unfolded deltas, as the hourly rollups sum them", async () => {
    await t.runtime.registerAgent({ id: 'measured', name: 'Measured', role: 'qa' });
    // Final rows over three hours (one in the current hour), then a queued task cancelled.
    await t.db.exec(
      `insert into cas_tasks (agent_id, action, status, attempts, started_at, finished_at, duration_ms)
       values ('measured', 'ping', 'succeeded', 1, now() - interval '3 hours', now() - interval '3 hours', 100),
              ('measured', 'ping', 'failed', 1, now() - interval '2 hours', now() - interval '2 hours', 300),
              ('measured', 'ping', 'succeeded', 1, now() - interval '1 second', now(), 200)`,
    );
    const queued = await t.runtime.executeTask({ agentId: 'measured', action: 'ping' });
    await t.runtime.cancelTask(queued.id);
    // The same sums over every hour, read through a range that holds the whole history.
    const fromRollups = async () =>
      (
        await t.db.query<Record<string, unknown>>(
          `select total_runs::int, succeeded::int, failed::int, cancelled::int, avg_duration_ms
           from cas_agent_metrics(array['measured'], now() - interval '1 day', now() + interval '1 day')`,
        )
      )[0];
    const allTime = async () =>
      (
        await t.db.query<Record<string, unknown>>(
          `select total_runs::int, succeeded::int, failed::int, cancelled::int, avg_duration_ms
           from cas_agent_metrics(array['measured'])`,
        )
      )[0];
    const expected = { total_runs: 4, succeeded: 2, failed: 1, cancelled: 1, avg_duration_ms: 200 };
    expect(await fromRollups()).toEqual(expected);
    expect(await allTime()).toEqual(expected);
    await t.db.query('select cas_fold_task_counters()');
    expect(await allTime()).toEqual(expected);
    // Half folded, half not: another task ends after the fold.
    await t.db.exec(
      `insert into cas_tasks (agent_id, action, status, attempts, started_at, finished_at, duration_ms)
       values ('measured', 'ping', 'failed', 1, now() - interval '1 second', now(), 1000)`,
    );
    const more = { total_runs: 5, succeeded: 2, failed: 2, cancelled: 1, avg_duration_ms: 400 };
    expect(await allTime()).toEqual(more);
    expect(await fromRollups()).toEqual(more);
    await t.db.query('select cas_fold_task_counters()');
    expect(await allTime()).toEqual(more);
    expect(await t.runtime.getMetrics('measured')).toMatchObject({ totalRuns: 5 });
  });

  it.runIf(kind === 'postgres')(
    'leave the deltas to the fold in progress when another one starts',
    async () => {
      await t.runtime.executeTask({ agentId: 'folded', action: 'ping' });
      const before = await countersOf(t, 'folded');
      const first = new pg.Client({ connectionString: t.testDb.url! });
      await first.connect();
      try {
        await first.query('begin');
        const { rows } = await first.query<{ folded: number }>('select cas_fold_task_counters() as folded');
        expect(rows[0]!.folded).toBeGreaterThan(0);
        // The first fold has not committed: the second folds nothing and does not wait for it.
        const [second] = await t.db.query<{ folded: number }>('select cas_fold_task_counters() as folded');
        expect(second!.folded).toBe(0);
        expect(await countersOf(t, 'folded')).toEqual(before);
        await first.query('commit');
      } finally {
        await first.end();
      }
      expect(await countersOf(t, 'folded')).toEqual(before);
    },
  );

  it.runIf(kind === 'postgres')(
    "refresh the agents' status rows one at a time; a stopping worker's refresh waits its turn",
    async () => {
      const first = new pg.Client({ connectionString: t.testDb.url! });
      await first.connect();
      const order: string[] = [];
      try {
        await first.query('begin');
        await first.query('select cas_refresh_agent_status()');
        // Another refresh meanwhile changes nothing at once; one that waits, waits for the commit.
        const [skipped] = await t.db.query<{ changed: number }>(
          'select cas_refresh_agent_status() as changed',
        );
        expect(skipped!.changed).toBe(0);
        const waiting = t.db
          .query('select cas_refresh_agent_status(p_wait => true)')
          .then(() => order.push('waiting refresh done'));
        await until('the waiting refresh to wait for the advisory lock', async () => {
          const rows = await t.db.query<{ n: number }>(
            `select count(*)::int as n from pg_locks l join pg_database d on d.oid = l.database
             where d.datname = current_database() and l.locktype = 'advisory' and not l.granted`,
          );
          return rows[0]!.n > 0 ? true : undefined;
        });
        order.push('first commits');
        await first.query('commit');
        await waiting;
      } finally {
        await first.end();
      }
      expect(order).toEqual(['first commits', 'waiting refresh done']);
    },
  );
});
