import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { SqlParam } from '../../src/db/database.js';
import { sqlFunctionsOver } from '../../src/db/sql-functions.js';
import { CompletionBatcher } from '../../src/domains/task/completion-batcher.js';
import { taskStore, type ClaimedTask, type Task } from '../../src/domains/task/task.js';
import {
  describeEachDatabase,
  openTestDatabase,
  testDatabaseKinds,
  type TestDatabase,
} from '../support/databases.js';
import { databaseSnapshot, openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { until } from '../support/until.js';

/** Polls `check` until it returns a value other than undefined; a generous deadline, not a margin. */

const taskWhere = (t: TestRuntime, id: string, ok: (task: Task) => boolean) =>
  until(`task ${id}`, async () => {
    const [task] = await t.runtime.getTasks([id]);
    return task && ok(task) ? task : undefined;
  });

const isFinal = (task: Task) => ['succeeded', 'failed', 'cancelled'].includes(task.status);

const eventTypes = async (t: TestRuntime, taskId: string) =>
  (await t.runtime.getEventHistory({ taskId, first: 100 })).items.map((event) => event.type);

const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });

/** Makes a running task's lease look expired and sweeps it, in one transaction (no heartbeat between). */
const sweepNow = (t: TestRuntime, taskId: string) =>
  t.db.exec(
    `update cas_tasks set lease_expires_at = now() - interval '1 second' where id = '${taskId}';
     select cas_expire_leases(100);`,
  );

describeEachDatabase('leases', (kind) => {
  describe('lease tokens', () => {
    let t: TestRuntime;
    beforeAll(async () => {
      // No worker: the test claims and writes as one.
      t = await openTestRuntime(kind, { CAS_WORKERS: '0' });
      await t.runtime.registerAgent({ id: 'leased', name: 'Leased', role: 'qa' });
    });
    afterAll(() => t.close());

    it('every write of an attempt whose lease was swept is a CONFLICT and changes nothing', async () => {
      const store = taskStore(sqlFunctionsOver(t.db));
      const task = await t.runtime.executeTask({ agentId: 'leased', action: 'ping', maxAttempts: 3 });
      const [first] = (await store.claim('worker-1', 1, 60_000, { agentIds: ['leased'] })).claimed;
      expect(first).toMatchObject({ id: task.id, attempts: 1, status: 'running' });
      await sweepNow(t, task.id);
      // The same worker claims it again: only the lease token tells the attempts apart.
      const [second] = (await store.claim('worker-1', 1, 60_000, { agentIds: ['leased'] })).claimed;
      expect(second).toMatchObject({ id: task.id, attempts: 2, workerId: 'worker-1' });
      expect(second!.leaseToken).not.toBe(first!.leaseToken);

      const stale: ClaimedTask = first!;
      const before = await databaseSnapshot(t.db);
      const conflict = { code: 'CONFLICT' };
      await expect(store.complete(stale, { attempt: 1 })).rejects.toMatchObject(conflict);
      await expect(store.fail(stale, { message: 'late', code: 'X' }, true)).rejects.toMatchObject(conflict);
      await expect(store.finishCancelled(stale)).rejects.toMatchObject(conflict);
      await expect(store.release(stale)).rejects.toMatchObject(conflict);
      await expect(store.reportProgress(stale, 0.5, 'late')).rejects.toMatchObject(conflict);
      expect(await store.extendLeases([stale], 60_000)).toEqual([]);
      expect(await databaseSnapshot(t.db)).toBe(before);

      expect((await store.extendLeases([second!], 60_000)).map((held) => held.id)).toEqual([task.id]);
      const done = await store.complete(second!, { attempt: 2 });
      expect(done).toMatchObject({ status: 'succeeded', result: { attempt: 2 }, leaseToken: null });
    });

    it('a sweep limited to fewer leases than expired takes those that expired first, the rest at the next', async () => {
      const store = taskStore(sqlFunctionsOver(t.db));
      const queued = [];
      for (let index = 0; index < 3; index += 1)
        queued.push(await t.runtime.executeTask({ agentId: 'leased', action: 'ping', maxAttempts: 2 }));
      const claimed = (await store.claim('sweep-worker', 3, 60_000, { agentIds: ['leased'] })).claimed;
      expect(claimed.map((task) => task.id).sort()).toEqual(queued.map((task) => task.id).sort());
      // Hours ago, so that no lease another test left behind expired before these. The sweep locks
      // rows in the one lock order (by id here), which is not the order they expired in.
      const [oldest, newest, middle] = queued.map((task) => task.id) as [string, string, string];
      for (const [id, hoursAgo] of [
        [oldest, 3],
        [newest, 1],
        [middle, 2],
      ] as const)
        await t.db.query(
          `update cas_tasks set lease_expires_at = now() - make_interval(hours => $2) where id = $1`,
          [id, hoursAgo],
        );

      expect((await store.expireLeases(2)).map((task) => [task.id, task.status])).toEqual([
        [oldest, 'queued'],
        [middle, 'queued'],
      ]);
      const [stillRunning] = await t.runtime.getTasks([newest]);
      expect(stillRunning).toMatchObject({ status: 'running', workerId: 'sweep-worker' });
      expect((await store.expireLeases(2)).map((task) => task.id)).toContain(newest);
    });
  });

  describe('completions written together', () => {
    let t: TestRuntime;
    beforeAll(async () => {
      t = await openTestRuntime(kind, { CAS_WORKERS: '0' });
      await t.runtime.registerAgent({ id: 'batched', name: 'Batched', role: 'qa' });
    });
    afterAll(() => t.close());

    it('completions ending together share a write with the next claim; a stale lease among them is a CONFLICT alone', async () => {
      const sql = sqlFunctionsOver(t.db);
      const calls: string[] = [];
      const store = taskStore({
        rows: (fn, args) => (calls.push(fn), sql.rows(fn, args)),
        value: (fn, args) => (calls.push(fn), sql.value(fn, args)),
      });
      // As a worker's batches are written (runtime/worker.ts): each carries a claim of two more.
      const claimedWithBatches: ClaimedTask[] = [];
      const batches = new CompletionBatcher<Task>({
        one: (lease, result) => store.complete(lease, result),
        many: async (items) => {
          const written = await store.completeAndClaim(items, {
            workerId: 'worker-1',
            limit: 2,
            leaseMs: 60_000,
            agentIds: ['batched'],
          });
          claimedWithBatches.push(...written.claimed);
          return written.completed;
        },
      });
      const queued = await Promise.all(
        Array.from({ length: 6 }, () =>
          t.runtime.executeTask({ agentId: 'batched', action: 'ping', maxAttempts: 3 }),
        ),
      );
      const first = (await store.claim('worker-1', 6, 60_000, { agentIds: ['batched'] })).claimed;
      expect(first).toHaveLength(6);
      // One of them is swept and claimed again: its first lease is stale.
      const swept = first[5]!;
      await sweepNow(t, swept.id);
      const [again] = (await store.claim('worker-1', 1, 60_000, { agentIds: ['batched'] })).claimed;
      expect(again).toMatchObject({ id: swept.id, attempts: 2 });
      // Two more, for the batches' claims.
      const later = await Promise.all(
        [1, 2].map(() => t.runtime.executeTask({ agentId: 'batched', action: 'ping' })),
      );

      // Called in one turn of the event loop: they go as one batch, except the current lease of the
      // swept task, which never shares a batch with its stale one.
      const outcomes = await Promise.allSettled([
        ...first.map((task, index) => batches.complete(task, { index })),
        batches.complete(again!, { index: 'again' }),
      ]);
      expect(outcomes.map((outcome) => outcome.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect((outcomes[5] as PromiseRejectedResult).reason).toMatchObject({ code: 'CONFLICT' });
      // The six first attempts together (the stale lease left out, then tried alone for its error);
      // the second attempt of the swept task in a write of its own, never beside its first.
      expect(calls.filter((fn) => fn.startsWith('cas_complete_'))).toEqual([
        'cas_complete_and_claim_tasks',
        'cas_complete_task',
        'cas_complete_and_claim_tasks',
      ]);
      // The first batch claimed the two queued later, under new leases; the second found none left.
      expect(claimedWithBatches.map((task) => task.id).sort()).toEqual(later.map((task) => task.id).sort());
      for (const task of claimedWithBatches)
        expect(task).toMatchObject({ status: 'running', workerId: 'worker-1', attempts: 1 });
      const tasks = await t.runtime.getTasks(queued.map((task) => task.id));
      expect(tasks.map((task) => task!.status)).toEqual(Array(6).fill('succeeded'));
      expect(tasks.find((task) => task!.id === swept.id)!.result).toEqual({ index: 'again' });
      for (const task of first.slice(0, 5))
        expect(tasks.find((row) => row!.id === task.id)!.result).toEqual({ index: first.indexOf(task) });
      const completions = await t.db.query<{ task_id: string; n: number }>(
        `select task_id, count(*)::int as n from cas_agent_events
         where event_type = 'task_completed' and agent_id = 'batched' group by task_id`,
      );
      expect(completions).toHaveLength(6);
      expect(completions.every((row) => row.n === 1)).toBe(true);
      expect((await t.runtime.getAgents(['batched']))[0]).toMatchObject({ status: 'busy', runningTasks: 2 });
      await Promise.all(claimedWithBatches.map((task) => batches.complete(task, null)));
      expect((await t.runtime.getAgents(['batched']))[0]).toMatchObject({ status: 'idle', runningTasks: 0 });
    });

    it("a batch's claim counts the attempts it completes out of their agent's and caller's limits", async () => {
      await t.runtime.registerAgent({ id: 'single', name: 'Single', role: 'qa', maxConcurrency: 1 });
      await t.runtime.registerAgent({ id: 'capped', name: 'Capped', role: 'qa' });
      const store = taskStore(sqlFunctionsOver(t.db));
      const running = async (agentId: string) =>
        (
          await t.db.query<{ n: number }>(
            `select count(*)::int as n from cas_tasks where agent_id = $1 and status = 'running'`,
            [agentId],
          )
        )[0]!.n;
      // Each case: the first claim reaches the limit; the batch that completes those attempts claims
      // as many again, and the limit holds.
      const cases = [
        { agentId: 'single', userId: undefined, filter: { agentIds: ['single'] }, atLimit: 1 },
        {
          agentId: 'capped',
          userId: 'carol',
          filter: { agentIds: ['capped'], maxRunningPerCaller: 2 },
          atLimit: 2,
        },
      ];
      for (const { agentId, userId, filter, atLimit } of cases) {
        for (let i = 0; i < 2 * atLimit + 1; i++)
          await t.runtime.executeTask({ agentId, action: 'ping', input: { i }, userId });
        const { claimed: first, picked } = await store.claim('worker-1', 4, 60_000, filter);
        expect(first).toHaveLength(atLimit);
        // It took up every due task it could (at most four) and passed over those beyond the limit.
        expect(picked).toBe(Math.min(4, 2 * atLimit + 1));
        const written = await store.completeAndClaim(
          first.map((task) => ({ lease: task, result: null })),
          { workerId: 'worker-1', limit: 4, leaseMs: 60_000, ...filter },
        );
        expect(written.completed.map((task) => task.status)).toEqual(Array(atLimit).fill('succeeded'));
        expect(written.claimed).toHaveLength(atLimit);
        // It picked every task left (no more than four) and passed over those beyond the limit.
        expect(written.picked).toBe(atLimit + 1);
        expect(await running(agentId)).toBe(atLimit);
        await store.completeAndClaim(
          written.claimed.map((task) => ({ lease: task, result: null })),
          { workerId: 'worker-1', limit: 0, leaseMs: 60_000, ...filter },
        );
      }
    });

    it("a completion batch reaches its tasks by primary key, not through the index of running tasks' old versions", async () => {
      await t.runtime.registerAgent({ id: 'probed', name: 'Probed', role: 'qa' });
      const store = taskStore(sqlFunctionsOver(t.db));
      // Attempts that ran and ended: each left an index entry of status 'running' behind it.
      await t.db.query(
        `select count(*) from generate_series(1, 70) as g,
           lateral cas_enqueue_task(p_agent_id => 'probed', p_action => 'ping', p_input => jsonb_build_object('n', g))`,
      );
      let { claimed } = await store.claim('worker-1', 10, 60_000, { agentIds: ['probed'] });
      for (let batch = 0; batch < 5; batch++) {
        const written = await store.completeAndClaim(
          claimed.map((task) => ({ lease: task, result: null })),
          { workerId: 'worker-1', limit: 10, leaseMs: 60_000, agentIds: ['probed'] },
        );
        expect(written.completed).toHaveLength(10);
        claimed = written.claimed;
      }
      expect(claimed).toHaveLength(10);
      // Index scans on cas_tasks, counted around one call within its transaction (the counters also
      // hold earlier transactions of the connection not yet reported).
      const indexScansDuring = (sql: string, params: SqlParam[]) =>
        t.db.transaction(async (tx) => {
          const indexScans = async () =>
            new Map(
              (
                await tx.query<{ index: string; scans: number }>(
                  `select indexrelid::regclass::text as index, pg_stat_get_xact_numscans(indexrelid)::int as scans
                   from pg_index where indrelid = 'cas_tasks'::regclass`,
                )
              ).map((row) => [row.index, row.scans]),
            );
          const before = await indexScans();
          const rows = await tx.query(sql, params);
          const scans = Object.fromEntries(
            [...(await indexScans())]
              .filter(([index, n]) => n > before.get(index)!)
              .map(([index, n]) => [index, n - before.get(index)!]),
          );
          return { rows, scans };
        });
      // A heartbeat of the running attempts: by primary key only.
      const heartbeat = await indexScansDuring(
        `select id from cas_extend_lease($1::uuid[], $2::uuid[], 60000)`,
        [claimed.map((task) => task.id), claimed.map((task) => task.leaseToken)],
      );
      expect(heartbeat.rows).toHaveLength(10);
      expect(Object.keys(heartbeat.scans)).toEqual(['cas_tasks_pkey']);
      // A batch alone (no claim): its tasks by primary key only.
      const completion = await indexScansDuring(
        `select id from cas_complete_and_claim_tasks($1::jsonb, 'worker-1', 0, 60000)`,
        [JSON.stringify(claimed.map((task) => ({ id: task.id, leaseToken: task.leaseToken, result: null })))],
      );
      expect(completion.rows).toHaveLength(10);
      expect(Object.keys(completion.scans)).toEqual(['cas_tasks_pkey']);
      // A claim alone: one walk of each queue (due queued tasks, due waiting ones), then by primary
      // key; and the running tasks of the agents with a maxConcurrency (earlier tests register
      // some) counted through their own index.
      const claim = await indexScansDuring(
        `select id from cas_complete_and_claim_tasks('[]'::jsonb, 'worker-1', 10, 60000)`,
        [],
      );
      expect(claim.rows).toHaveLength(10);
      expect(claim.scans).toMatchObject({ cas_tasks_claim_idx: 1, cas_tasks_waiting_due_idx: 1 });
      expect(
        Object.keys(claim.scans)
          .filter((index) => index !== 'cas_tasks_running_agent_idx')
          .sort(),
      ).toEqual(['cas_tasks_claim_idx', 'cas_tasks_pkey', 'cas_tasks_waiting_due_idx']);
    });
  });

  describe("a worker's completion batches", () => {
    let t: TestRuntime;
    beforeAll(async () => {
      t = await openTestRuntime(kind, { CAS_WORKER_CONCURRENCY: '2' });
      await t.runtime.registerAgent({ id: 'relay', name: 'Relay', role: 'qa' });
    });
    afterAll(() => t.close());

    it('carry its next claim: the attempts after the first claim begin in the transactions that end the ones before', async () => {
      // Six at once (one statement), so the queue never runs dry between two batches.
      await t.db.query(
        `select count(*) from generate_series(1, 6) as g,
           lateral cas_enqueue_task(p_agent_id => 'relay', p_action => 'ping', p_input => jsonb_build_object('n', g))`,
      );
      await until('six tasks done', async () => {
        const [row] = await t.db.query<{ n: number }>(
          `select count(*)::int as n from cas_tasks where agent_id = 'relay' and status = 'succeeded'`,
        );
        return row!.n === 6 ? true : undefined;
      });
      // Event rows are only inserted, so a row's xmin is the transaction that wrote it.
      const [row] = await t.db.query<{ begun: number; withCompletion: number }>(
        `select count(*)::int as "begun",
                (count(*) filter (where exists (
                  select 1 from cas_agent_events c
                  where c.agent_id = 'relay' and c.event_type = 'task_completed' and c.xmin = s.xmin)))::int
                  as "withCompletion"
         from cas_agent_events s where s.agent_id = 'relay' and s.event_type = 'task_started'`,
      );
      // Two by the claim loop (concurrency 2), the other four each with the completion that freed its slot.
      expect(row).toEqual({ begun: 6, withCompletion: 4 });
    });
  });

  describe('a worker whose lease was swept', () => {
    let t: TestRuntime;
    beforeAll(async () => {
      t = await openTestRuntime(kind);
    });
    afterAll(() => t.close());

    it('claimed again by the same worker: attempt 1 stops first, its late result never lands', async () => {
      let releaseFirst!: () => void;
      const firstReleased = new Promise<void>((resolve) => (releaseFirst = resolve));
      let releaseSecond!: () => void;
      const secondReleased = new Promise<void>((resolve) => (releaseSecond = resolve));
      const started: number[] = [];
      let active = 0;
      let mostActive = 0;
      await t.runtime.registerAgent(
        { id: 'reclaimed', name: 'Reclaimed', role: 'qa' },
        {
          actions: {
            hold: async (_input, ctx) => {
              started.push(ctx.attempt);
              active += 1;
              mostActive = Math.max(mostActive, active);
              try {
                if (ctx.attempt === 1) await Promise.race([firstReleased, aborted(ctx.signal)]);
                else await secondReleased;
                // Returned even after an abort: a late result the worker must not record.
                return { attempt: ctx.attempt };
              } finally {
                active -= 1;
              }
            },
          },
        },
      );
      const task = await t.runtime.executeTask({ agentId: 'reclaimed', action: 'hold', maxAttempts: 3 });
      await taskWhere(t, task.id, (row) => row.status === 'running' && row.attempts === 1);
      await until('attempt 1 to start', async () => (started.length === 1 ? true : undefined));
      // As if the heartbeat had not got through in time: any worker's sweep requeues the task.
      await sweepNow(t, task.id);
      await taskWhere(t, task.id, (row) => row.status === 'running' && row.attempts === 2);
      await until('attempt 2 to start', async () => (started.length === 2 ? true : undefined));
      releaseFirst();
      releaseSecond();
      const final = await taskWhere(t, task.id, isFinal);
      expect(final).toMatchObject({ status: 'succeeded', attempts: 2, result: { attempt: 2 } });
      expect(started).toEqual([1, 2]);
      expect(mostActive).toBe(1);
      expect(await eventTypes(t, task.id)).toEqual([
        'task_queued',
        'task_started',
        'task_retry_scheduled',
        'task_started',
        'task_completed',
      ]);
    });

    it('a task queued for an agent that is stopped by then is cancelled at claim, never started', async () => {
      await t.runtime.registerAgent({ id: 'ghost', name: 'Ghost', role: 'qa' });
      await t.runtime.unregisterAgent('ghost');
      // As if it had been queued while the agent was being unregistered.
      const [row] = await t.db.query<{ id: string }>(
        `insert into cas_tasks (agent_id, action) values ('ghost', 'ping') returning id`,
      );
      const final = await taskWhere(t, row!.id, isFinal);
      expect(final).toMatchObject({ status: 'cancelled', error: { code: 'AGENT_UNREGISTERED' } });
      expect(await eventTypes(t, row!.id)).toEqual(['task_cancelled']);
    });
  });
});

const onServer = testDatabaseKinds.includes('postgres');

describe.skipIf(!onServer)('unregistering while tasks are queued [postgres]', () => {
  let t: TestRuntime;
  let other: pg.Client;
  beforeAll(async () => {
    // No worker: a claim between the enqueue's commit and the unregistering's agent lock is a valid
    // order too (the task starts before the agent stops, and running tasks finish), so a worker
    // would make the outcome depend on which of the two the server schedules first.
    t = await openTestRuntime('postgres', { CAS_WORKERS: '0' });
    other = new pg.Client({ connectionString: t.testDb.url });
    await other.connect();
  });
  afterAll(async () => {
    await other.end();
    await t.close();
  });

  const waitersOnLocks = async () => {
    const [row] = await t.db.query<{ n: number }>(
      `select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
       where not l.granted and a.datname = current_database()`,
    );
    return row!.n > 0 ? true : undefined;
  };

  it('a task queued while its agent is being unregistered is refused and never runs', async () => {
    await t.runtime.registerAgent({ id: 'leaving', name: 'Leaving', role: 'qa' });
    await other.query('begin');
    await other.query(`select * from cas_unregister_agent('leaving')`);
    const queueing = t.runtime.executeTask({ agentId: 'leaving', action: 'ping' }).then(
      (task) => ({ task }),
      (error: unknown) => ({ error }),
    );
    await until('the enqueue to wait for the unregistering', waitersOnLocks);
    await other.query('commit');
    expect(await queueing).toMatchObject({ error: { code: 'CONFLICT' } });
    expect(await t.db.query(`select id from cas_tasks where agent_id = 'leaving'`)).toEqual([]);
  });

  it('an agent unregistered while a task is being queued cancels that task', async () => {
    await t.runtime.registerAgent({ id: 'leaving-later', name: 'Leaving later', role: 'qa' });
    await other.query('begin');
    const {
      rows: [queued],
    } = await other.query<{ id: string }>(
      `select id from cas_enqueue_task(p_agent_id => 'leaving-later', p_action => 'ping')`,
    );
    const unregistering = t.runtime.unregisterAgent('leaving-later');
    await until('the unregistering to wait for the enqueue', waitersOnLocks);
    await other.query('commit');
    expect(await unregistering).toMatchObject({ status: 'stopped' });
    const final = await taskWhere(t, queued!.id, isFinal);
    expect(final).toMatchObject({ status: 'cancelled', error: { code: 'AGENT_UNREGISTERED' } });
    expect(await eventTypes(t, queued!.id)).toEqual(['task_queued', 'task_cancelled']);
  });
});

describe.skipIf(!onServer)('heartbeats and completions beside a held task row [postgres]', () => {
  let t: TestRuntime;
  let holder: pg.Client;
  beforeAll(async () => {
    t = await openTestRuntime('postgres', { CAS_WORKERS: '0' });
    await t.runtime.registerAgent({ id: 'beating', name: 'Beating', role: 'qa' });
    holder = new pg.Client({ connectionString: t.testDb.url });
    await holder.connect();
  });
  afterAll(async () => {
    await holder.end();
    await t.close();
  });

  // A completion batch locks its rows by id, a sweep by lease expiry; a heartbeat that waited for
  // rows could hold one either needs while waiting for one it holds (a deadlock).
  it('never waits for a task row another transaction holds: renews the others, reports that one unrenewed', async () => {
    const store = taskStore(sqlFunctionsOver(t.db));
    for (let i = 0; i < 3; i++) await t.runtime.executeTask({ agentId: 'beating', action: 'ping' });
    const { claimed } = await store.claim('beating-worker', 3, 60_000, { agentIds: ['beating'] });
    expect(claimed).toHaveLength(3);
    const [busy, ...free] = claimed;
    const expiries = async () =>
      new Map(
        (await t.runtime.getTasks(claimed.map((task) => task.id))).map((task) => [
          task!.id,
          task!.leaseExpiresAt?.getTime(),
        ]),
      );
    const before = await expiries();

    await holder.query('begin');
    await holder.query('select 1 from cas_tasks where id = $1 for update', [busy!.id]);
    try {
      // Answers while the row is still held: it did not wait.
      const renewed = await store.extendLeases(claimed, 600_000);
      expect(renewed.map((task) => task.id).sort()).toEqual(claimed.map((task) => task.id).sort());
    } finally {
      await holder.query('commit');
    }
    const after = await expiries();
    expect(after.get(busy!.id)).toBe(before.get(busy!.id));
    for (const task of free) expect(after.get(task.id)).toBeGreaterThan(before.get(task.id)!);
    // The next beat renews the row that was held.
    await store.extendLeases(claimed, 600_000);
    expect((await expiries()).get(busy!.id)).toBeGreaterThan(before.get(busy!.id)!);
  });

  // A stale completion that waited for a task another worker's claim held could deadlock with that
  // claim, which PostgreSQL may make wait for the batch despite SKIP LOCKED.
  it('a completion batch does not wait for a task whose lease is no longer its own', async () => {
    const store = taskStore(sqlFunctionsOver(t.db));
    const queued = await t.runtime.executeTask({ agentId: 'beating', action: 'ping', maxAttempts: 2 });
    const { claimed } = await store.claim('beating-worker', 1, 60_000, { agentIds: ['beating'] });
    expect(claimed.map((task) => task.id)).toEqual([queued.id]);
    // Swept back to the queue, as when the worker stopped renewing; another claim now holds it.
    await sweepNow(t, queued.id);
    await holder.query('begin');
    await holder.query('select 1 from cas_tasks where id = $1 for update', [queued.id]);
    try {
      // Answers while the row is still held: it did not wait.
      const written = await store.completeAndClaim([{ lease: claimed[0]!, result: { late: true } }], {
        workerId: 'beating-worker',
        limit: 0,
        leaseMs: 60_000,
      });
      expect(written.completed).toEqual([]);
    } finally {
      await holder.query('commit');
    }
    const [task] = await t.runtime.getTasks([queued.id]);
    expect(task).toMatchObject({ status: 'queued', result: null });
  });
});

/** Scenarios to try until the database picks the call, not the test's transaction, as the victim. */
const VICTIM_SCENARIOS = 5;

describe.skipIf(!onServer)('a call the database rolls back as a deadlock victim [postgres]', () => {
  let t: TestRuntime;
  let holder: pg.Client;
  beforeAll(async () => {
    t = await openTestRuntime('postgres', { CAS_WORKERS: '0' });
    holder = new pg.Client({ connectionString: t.testDb.url, application_name: 'cas-deadlock-holder' });
    await holder.connect();
    // Later than the server's 1 s for the runtime's connections, so that the call's check finds
    // the cycle first when the holder joins it in time (the process that finds one is the victim).
    await holder.query(`set deadlock_timeout = '3s'`);
  });
  afterAll(async () => {
    await holder.end();
    await t.close();
  });

  /** Backends of this database waiting for a lock while running `fn`. */
  const waitingIn = async (fn: string) => {
    const [row] = await t.db.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock' and query like $1`,
      [`%${fn}%`],
    );
    return row!.n > 0 ? true : undefined;
  };

  /**
   * The holder takes the event-sequence row, a state write locks its agent and waits for that row,
   * then the holder asks for the agent: each waits for the other. Returns whether the write was
   * the victim (the holder's lock then came through), and the write's outcome.
   */
  const deadlockOnce = async (round: number) => {
    await holder.query('begin');
    await holder.query('select 1 from cas_event_sequence for update');
    const write = t.runtime.updateAgentState('marketer', { round }).then(
      (state) => ({ state }),
      (error: unknown) => ({ error }),
    );
    await until('the state write waiting for the event-sequence row', () =>
      waitingIn('cas_update_agent_state'),
    );
    const writeWasVictim = await holder
      .query(`select 1 from cas_agents where id = 'marketer' for no key update`)
      .then(
        () => true,
        (error: unknown) => {
          if ((error as pg.DatabaseError).code !== '40P01') throw error;
          return false;
        },
      );
    await holder.query(writeWasVictim ? 'commit' : 'rollback');
    return { writeWasVictim, outcome: await write };
  };

  it('runs it again: the call succeeds, written once', async () => {
    let victimRound: number | undefined;
    for (let round = 1; round <= VICTIM_SCENARIOS && victimRound === undefined; round += 1) {
      const { writeWasVictim, outcome } = await deadlockOnce(round);
      expect(outcome).toMatchObject({ state: { data: { round } } });
      if (writeWasVictim) victimRound = round;
    }
    expect(victimRound).toBeDefined();
    // One version per round: the rolled-back run wrote nothing that stayed.
    const history = await t.runtime.getStateHistory('marketer', { limit: 100 });
    expect(history.map((state) => state.data)).toEqual(
      Array.from({ length: victimRound! }, (_, index) => ({ round: victimRound! - index })),
    );
  });
});

/** How long the lock-order stress runs; it stops by itself. */
const STRESS_MS = 20_000;
const STRESS_AGENTS = ['marketer', 'analyst', 'planner'];

describe.skipIf(!onServer)('lock order under load [postgres]', () => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await openTestDatabase('postgres');
  });
  afterAll(() => testDb.close());

  /** pg_stat_database.deadlocks of this database, without a cached snapshot. */
  const deadlocks = async () => {
    const [row] = await testDb.db.transaction(async (tx) => {
      await tx.query('select pg_stat_clear_snapshot()');
      return tx.query<{ n: number }>(
        'select deadlocks::int as n from pg_stat_database where datname = current_database()',
      );
    });
    return row!.n;
  };

  it(
    'sweeps, claims, completions alone and in batches, heartbeats, progress and state writes from many connections never deadlock',
    { timeout: STRESS_MS + 60_000 },
    async () => {
      const before = await deadlocks();
      const until = Date.now() + STRESS_MS;
      const errors: string[] = [];
      // Each deadlock with the server's account of it: who waited for what, in which statement.
      const deadlocked: string[] = [];
      let rounds = 0;

      /** Runs `step` on a connection of its own until the time is up; expected refusals are fine. */
      const loop = async (step: (client: pg.Client, round: number) => Promise<unknown>) => {
        const client = new pg.Client({ connectionString: testDb.url, application_name: 'cas-stress' });
        await client.connect();
        try {
          for (let round = 0; Date.now() < until; round += 1) {
            rounds += 1;
            try {
              await step(client, round);
            } catch (error) {
              const { code, detail, where } = error as pg.DatabaseError;
              if (code === '40P01') deadlocked.push(`${detail}\n  in ${where}`);
              else if (code !== 'CASCF') errors.push(`${code}: ${(error as Error).message}`);
            }
          }
          // Hands this backend's statistics to pg_stat_database before it answers the next query.
          await client.query('select pg_stat_force_next_flush()');
          await client.query('select 1');
        } finally {
          await client.end();
        }
      };

      const agentOf = (round: number) => STRESS_AGENTS[round % STRESS_AGENTS.length]!;
      const enqueue = (client: pg.Client, round: number) =>
        client.query(
          `select id from cas_enqueue_task(p_agent_id => $1, p_action => 'ping', p_max_attempts => 3)`,
          [agentOf(round)],
        );
      const claimAndFinish = async (client: pg.Client, round: number) => {
        // Short leases, so the sweeper finds expired ones while their workers still write.
        const { rows } = await client.query<{ id: string; lease_token: string }>(
          `select id, lease_token from cas_claim_tasks(p_worker_id => $1, p_limit => 5, p_lease_ms => 20)`,
          [`stress-${round % 2}`],
        );
        const completed: Array<{ id: string; leaseToken: string; result: unknown }> = [];
        for (const [index, task] of rows.entries()) {
          const lease = [task.id, task.lease_token];
          await client
            .query(`select 1 from cas_report_progress($1, $2, 0.5, 'half')`, lease)
            .catch(swallowConflict);
          if (index % 3 === 0) {
            await client
              .query(`select 1 from cas_fail_task($1, $2, '{"message":"flaky"}'::jsonb, true)`, lease)
              .catch(swallowConflict);
          } else if (round % 2 === 0) {
            await client
              .query(`select 1 from cas_complete_task($1, $2, '{"ok":true}'::jsonb)`, lease)
              .catch(swallowConflict);
          } else {
            completed.push({ id: task.id, leaseToken: task.lease_token, result: { ok: true } });
          }
        }
        // The rest as one batch with the next claim, as a worker's completion batcher writes them
        // (what it claims is left to the sweeper).
        if (completed.length > 0)
          await client.query(
            `select 1 from cas_complete_and_claim_tasks($1::jsonb, p_worker_id => $2, p_limit => 3, p_lease_ms => 20)`,
            [JSON.stringify(completed), `stress-${round % 2}`],
          );
      };
      // Renews leases of tasks other connections are finishing, listed in no particular order.
      const heartbeat = async (client: pg.Client) => {
        const { rows } = await client.query<{ id: string; lease_token: string }>(
          `select id, lease_token from cas_tasks where status = 'running' order by random() limit 10`,
        );
        if (rows.length === 0) return;
        await client.query('select 1 from cas_extend_lease($1, $2, 20)', [
          rows.map((row) => row.id),
          rows.map((row) => row.lease_token),
        ]);
      };
      const sweep = (client: pg.Client) => client.query('select 1 from cas_expire_leases(100)');
      // As every worker does once a second: the summaries, amid the writes they summarise.
      const refreshSummaries = (client: pg.Client) =>
        client.query('select cas_fold_task_counters(), cas_refresh_agent_status()');
      const writeState = (client: pg.Client, round: number) =>
        round % 4 === 3
          ? client.query('select cas_reset_agent_state($1)', [agentOf(round)])
          : client.query(`select 1 from cas_update_agent_state($1, $2::jsonb)`, [
              agentOf(round),
              JSON.stringify({ round }),
            ]);

      await Promise.all([
        loop(async (client, round) => {
          await enqueue(client, round);
          await enqueue(client, round + 1);
        }),
        loop(claimAndFinish),
        loop(claimAndFinish),
        loop(sweep),
        loop(refreshSummaries),
        loop(heartbeat),
        loop(writeState),
        loop(async (client, round) => writeState(client, round + 1)),
      ]);

      expect(errors.slice(0, 5)).toEqual([]);
      expect(deadlocked).toEqual([]);
      expect(await deadlocks()).toBe(before);
      expect(rounds).toBeGreaterThan(100);
      // The queue's invariants hold after the storm: the agents' status rows, once refreshed, and
      // the counters, folded or not, agree with the task rows.
      await testDb.db.query('select cas_refresh_agent_status(p_wait => true)');
      const [status] = await testDb.db.query<{ wrong: number }>(
        `select count(*)::int as wrong from cas_agent_status s
         where s.running_tasks <> (select count(*) from cas_tasks t where t.agent_id = s.agent_id and t.status = 'running')
            or s.status <> case when s.status = 'stopped' then 'stopped'
                                when s.running_tasks > 0 then 'busy' else 'idle' end`,
      );
      expect(status!.wrong).toBe(0);
      const [counts] = await testDb.db.query<{ wrong: number }>(
        `with counted as (select agent_id, status, tasks from cas_task_counts where tasks <> 0),
              actual as (select agent_id, status, count(*) as tasks from cas_tasks group by agent_id, status)
         select count(*)::int as wrong
         from ((select * from counted except select * from actual)
               union all (select * from actual except select * from counted)) as differing`,
      );
      expect(counts!.wrong).toBe(0);
    },
  );
});

function swallowConflict(error: unknown): void {
  if ((error as { code?: string }).code !== 'CASCF') throw error;
}
