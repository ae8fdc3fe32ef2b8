/**
 * Retention (CAS_RETENTION_DAYS): old finished tasks, events, logs and metric points go, in
 * bounded batches; recent and unfinished work stays; counters and metrics stay right.
 * Rows are made old by moving their timestamps back 40 days in the database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { until } from '../support/until.js';
import type { Database, SqlParam } from '../../src/db/database.js';

const AGED = "interval '40 days'";

/**
 * Moves finished tasks 40 days into the past, with the history written up to their last event:
 * events, logs and metric points are pruned as a prefix of their order, so the prefix is aged.
 */
async function age(db: Database, taskIds: string[]): Promise<void> {
  await db.query(
    `update cas_tasks set created_at = created_at - ${AGED}, finished_at = finished_at - ${AGED} where id = any ($1)`,
    [taskIds],
  );
  const [{ until }] = (await db.query<{ until: string }>(
    'select max(created_at)::text as until from cas_agent_events where task_id = any ($1)',
    [taskIds],
  )) as [{ until: string }];
  await db.query(`update cas_agent_events set created_at = created_at - ${AGED} where created_at <= $1`, [
    until,
  ]);
  await db.query(`update cas_agent_logs set created_at = created_at - ${AGED} where task_id = any ($1)`, [
    taskIds,
  ]);
  await db.query(
    `update cas_metrics_timeseries set recorded_at = recorded_at - ${AGED} where recorded_at <= $1`,
    [until],
  );
}

const count = async (db: Database, sql: string, params: SqlParam[] = []) =>
  Number((await db.query<{ n: string | number }>(sql, params))[0]!.n);

describeEachDatabase('retention', (kind) => {
  let t: TestRuntime;
  const oldTasks: string[] = [];
  let recentTask: string;
  let waitingTask: string;
  let metricsBefore: Awaited<ReturnType<TestRuntime['runtime']['getMetrics']>>;

  beforeAll(async () => {
    t = await openTestRuntime(kind);
    await t.runtime.registerAgent(
      { id: 'keeper', name: 'Keeper', role: 'qa' },
      { actions: { chatty: (_input, ctx) => (ctx.log('info', 'hello'), 'done') } },
    );
    for (let i = 0; i < 5; i += 1) {
      const task = await t.runtime.executeTask({ agentId: 'keeper', action: 'chatty', wait: true });
      expect(task.status).toBe('succeeded');
      oldTasks.push(task.id);
    }
    // Logs are written in batches shortly after the handler returns.
    for (let tries = 0; ; tries += 1) {
      const logs = await count(t.db, "select count(*) as n from cas_agent_logs where agent_id = 'keeper'");
      if (logs === 5) break;
      if (tries > 100) throw new Error(`expected 5 log entries, saw ${logs}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    recentTask = (await t.runtime.executeTask({ agentId: 'keeper', action: 'chatty', wait: true })).id;
    // Queued long ago and still waiting: unfinished work is never deleted.
    waitingTask = (
      await t.runtime.executeTask({
        agentId: 'keeper',
        action: 'ping',
        runAt: new Date(Date.now() + 3_600_000),
      })
    ).id;
    await t.db.query(`update cas_tasks set created_at = created_at - ${AGED} where id = $1`, [waitingTask]);
    await age(t.db, oldTasks);
    metricsBefore = await t.runtime.getMetrics('keeper');
  });
  afterAll(() => t?.close());

  describe('one batch', () => {
    it('deletes at most the batch size of each kind, oldest first', async () => {
      const [batch] = await t.db.query<{ skipped: boolean; tasks: number; events: number; logs: number }>(
        'select * from cas_prune_history(30, 2)',
      );
      expect(batch).toMatchObject({ skipped: false, tasks: 2, events: 2, logs: 2 });
      // The events removed are the two oldest: the log is still contiguous from the oldest kept.
      const [{ min, max, n }] = (await t.db.query<{ min: string; max: string; n: string }>(
        'select min(seq) as min, max(seq) as max, count(*) as n from cas_agent_events',
      )) as [{ min: string; max: string; n: string }];
      expect(Number(max) - Number(min) + 1).toBe(Number(n));
      expect(await count(t.db, "select pruned_through as n from cas_retention where log = 'events'")).toBe(
        Number(min) - 1,
      );
    });

    it('skips without waiting while another process prunes (advisory try-lock)', async () => {
      if (kind !== 'postgres') return; // needs a second connection to hold the lock
      const holder = await t.db.transaction(async (tx) => {
        await tx.query('select pg_advisory_xact_lock(4846791580151137003)');
        return t.db.query<{ skipped: boolean; tasks: number }>('select * from cas_prune_history(30, 2)');
      });
      expect(holder[0]).toMatchObject({ skipped: true, tasks: 0 });
    });
  });

  describe('a full run', () => {
    beforeAll(async () => {
      const total = await t.runtime.pruneHistory(3);
      expect(total.skipped).toBe(false);
    });

    it('deletes old finished tasks with their events, logs and metric points', async () => {
      expect(await t.runtime.getTasks(oldTasks)).toEqual(oldTasks.map(() => null));
      expect(
        await count(t.db, 'select count(*) as n from cas_agent_events where task_id = any ($1)', [oldTasks]),
      ).toBe(0);
      expect(
        await count(t.db, 'select count(*) as n from cas_agent_logs where task_id = any ($1)', [oldTasks]),
      ).toBe(0);
      expect(
        await count(
          t.db,
          `select count(*) as n from cas_metrics_timeseries where recorded_at < now() - interval '30 days'`,
        ),
      ).toBe(0);
    });

    it('keeps recent and unfinished tasks and their history', async () => {
      const [recent, waiting] = await t.runtime.getTasks([recentTask, waitingTask]);
      expect(recent?.status).toBe('succeeded');
      expect(waiting?.status).toBe('queued');
      const events = await t.runtime.getEventHistory({ taskId: recentTask });
      expect(events.items.map((event) => event.type)).toEqual([
        'task_queued',
        'task_started',
        'task_completed',
      ]);
      const logs = await t.runtime.getLogs({ taskId: recentTask });
      expect(logs.items.map((entry) => entry.message)).toEqual(['hello']);
    });

    it('keeps totalCount equal to the tasks listed, and metrics as they were', async () => {
      const page = await t.runtime.listTasks({ agentId: 'keeper', first: 500 });
      expect(page.items.map((task) => task.id).sort()).toEqual([recentTask, waitingTask].sort());
      expect(await t.runtime.countTasks({ agentId: 'keeper' })).toBe(2);
      expect(await t.runtime.countTasks({ agentId: 'keeper', statuses: ['queued'] })).toBe(1);
      expect(await t.runtime.countTasks({})).toBe((await t.runtime.listTasks({ first: 500 })).items.length);
      // Metrics come from hourly rollups, which retention keeps.
      expect(await t.runtime.getMetrics('keeper')).toMatchObject({
        totalRuns: metricsBefore.totalRuns,
        succeeded: 6,
      });
    });

    it('does nothing more on a second run', async () => {
      expect(await t.runtime.pruneHistory()).toMatchObject({
        tasks: 0,
        events: 0,
        logs: 0,
        metricPoints: 0,
        workflowRuns: 0,
      });
    });
  });
});

describeEachDatabase('retention off', (kind) => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await openTestRuntime(kind, { CAS_RETENTION_DAYS: '0' });
  });
  afterAll(() => t?.close());

  it('CAS_RETENTION_DAYS=0 keeps everything', async () => {
    const task = await t.runtime.executeTask({ agentId: 'analyst', action: 'ping', wait: true });
    await age(t.db, [task.id]);
    expect(await t.runtime.pruneHistory()).toMatchObject({ tasks: 0, events: 0 });
    expect((await t.runtime.getTasks([task.id]))[0]?.status).toBe('succeeded');
  });
});

describeEachDatabase('retention of workflow runs', (kind) => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await openTestRuntime(kind);
  });
  afterAll(() => t?.close());

  it('deletes runs that finished before the retention with their steps, and keeps recent ones', async () => {
    const definition = { steps: [{ id: 'only', agentId: 'marketer', action: 'ping' }] };
    const [old, recent] = [
      await t.runtime.executeWorkflow({ definition }),
      await t.runtime.executeWorkflow({ definition }),
    ];
    await until('both runs to succeed', async () => {
      const runs = await t.runtime.getWorkflowRuns([old.id, recent.id]);
      return runs.every((run) => run?.status === 'succeeded') ? true : undefined;
    });
    await t.db.query(
      `update cas_workflow_runs set created_at = created_at - ${AGED}, finished_at = finished_at - ${AGED} where id = $1`,
      [old.id],
    );
    const total = await t.runtime.pruneHistory();
    expect(total.workflowRuns).toBe(1);
    expect((await t.runtime.getWorkflowRuns([old.id, recent.id])).map((run) => run?.status ?? null)).toEqual([
      null,
      'succeeded',
    ]);
    expect(
      await count(t.db, 'select count(*) as n from cas_workflow_steps where run_id = $1', [old.id]),
    ).toBe(0);
    expect((await t.runtime.pruneHistory()).workflowRuns).toBe(0);
  });
});
