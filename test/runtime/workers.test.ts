import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { Database } from '../../src/db/database.js';
import { testDatabaseKinds } from '../support/databases.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { createRuntime } from '../../src/runtime/create-runtime.js';
import { FAST_RUNTIME_ENV, openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { startProcess, stopProcess, type ServiceProcess } from '../support/processes.js';

const WORKER_ENV = {
  CAS_WORKER_CONCURRENCY: '10',
  CAS_WORKER_POLL_MS: '200',
  CAS_TASK_LEASE_MS: '1500',
  CAS_SHUTDOWN_TIMEOUT_MS: '3000',
};

async function waitUntil(check: () => Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const countByStatus = async (db: Database) =>
  Object.fromEntries(
    (
      await db.query<{ status: string; n: number }>(
        'select status, count(*)::int as n from cas_tasks group by status',
      )
    ).map((row) => [row.status, row.n]),
  ) as Record<string, number>;

describe.skipIf(!testDatabaseKinds.includes('postgres'))('worker processes [postgres]', () => {
  let t: TestRuntime;
  const workers: ServiceProcess[] = [];

  beforeAll(async () => {
    // This process only enqueues; the worker processes run everything.
    t = await openTestRuntime('postgres', { CAS_WORKERS: '0' });
  });
  afterAll(async () => {
    await Promise.all(workers.map((worker) => stopProcess(worker, 'SIGKILL')));
    await t.close();
  });

  it(
    '3 workers run 500 tasks exactly once while one of them is killed with SIGKILL',
    { timeout: 120_000 },
    async () => {
      const env = { ...WORKER_ENV, DATABASE_URL: t.testDb.url! };
      workers.push(
        ...(await Promise.all(
          [1, 2, 3].map(() => startProcess('src/server/worker-main.ts', env, 'worker started')),
        )),
      );
      const ids: string[] = [];
      for (let index = 0; index < 500; index += 1) {
        const task = await t.runtime.executeTask({
          agentId: 'developer',
          action: 'wait',
          input: { ms: 20 + Math.floor(Math.random() * 130) },
          maxAttempts: 3,
        });
        ids.push(task.id);
      }
      await waitUntil(
        async () => ((await countByStatus(t.db)).succeeded ?? 0) >= 100,
        30_000,
        '100 tasks done',
      );
      const killedPid = workers[0]!.child.pid;
      await stopProcess(workers[0]!, 'SIGKILL');
      // Attempts the killed worker still held (its worker ids carry its pid): their leases must
      // expire. Read after the kill, so a task it finished just before dying is not counted.
      const running = await t.db.query<{ worker_id: string }>(
        `select worker_id from cas_tasks where status = 'running' and worker_id like $1`,
        [`%:${killedPid}:%`],
      );

      await waitUntil(
        async () => ((await countByStatus(t.db)).succeeded ?? 0) === 500,
        90_000,
        'all 500 tasks to succeed',
      );
      expect(await countByStatus(t.db)).toEqual({ succeeded: 500 });
      const completions = await t.db.query<{ task_id: string; n: number }>(
        `select task_id, count(*)::int as n from cas_agent_events where event_type = 'task_completed' group by task_id`,
      );
      expect(completions).toHaveLength(500);
      expect(completions.every((row) => row.n === 1)).toBe(true);
      expect(new Set(completions.map((row) => row.task_id))).toEqual(new Set(ids));
      // Every attempt is in the history: starts = completions + attempts lost with the killed worker.
      const [attempts] = await t.db.query<{ started: number; expired: number; attempts: number }>(`
      select (select count(*)::int from cas_agent_events where event_type = 'task_started') as started,
             (select count(*)::int from cas_agent_events where event_type = 'task_retry_scheduled'
                and payload->>'reason' = 'lease_expired') as expired,
             (select sum(attempts)::int from cas_tasks) as attempts`);
      expect(attempts!.started).toBe(attempts!.attempts);
      expect(attempts!.started).toBe(500 + attempts!.expired);
      if (running.length > 0) expect(attempts!.expired).toBeGreaterThan(0);
      const [status] = await t.db.query<{ busy: number }>(
        `select count(*)::int as busy from cas_agents_view where running_tasks <> 0 or status = 'busy'`,
      );
      expect(status?.busy).toBe(0);
    },
  );

  it('SIGTERM lets a running task finish or hands it back at once', { timeout: 60_000 }, async () => {
    await Promise.all(workers.map((worker) => stopProcess(worker)));
    const env = { ...WORKER_ENV, DATABASE_URL: t.testDb.url!, CAS_SHUTDOWN_TIMEOUT_MS: '300' };
    const leaving = await startProcess('src/server/worker-main.ts', env, 'worker started');
    workers.push(leaving);
    const task = await t.runtime.executeTask({
      agentId: 'qa',
      action: 'wait',
      input: { ms: 4000, steps: 4 },
      maxAttempts: 2,
    });
    await waitUntil(
      async () => (await t.runtime.getTasks([task.id]))[0]?.status === 'running',
      10_000,
      'the task to start',
    );
    const [{ worker_id: firstWorker } = { worker_id: '' }] = await t.db.query<{ worker_id: string }>(
      'select worker_id from cas_tasks where id = $1',
      [task.id],
    );
    const stopAt = Date.now();
    expect(await stopProcess(leaving)).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(3000);
    const events = (await t.runtime.getEventHistory({ taskId: task.id })).items;
    const released = events.find((event) => event.type === 'task_retry_scheduled');
    expect(released?.payload).toMatchObject({ reason: 'released', workerId: firstWorker });
    // Released attempts do not count: another worker starts it again as attempt 1.
    workers.push(await startProcess('src/server/worker-main.ts', env, 'worker started'));
    await waitUntil(
      async () => (await t.runtime.getTasks([task.id]))[0]?.status === 'succeeded',
      20_000,
      'another worker to finish it',
    );
    const [finished] = await t.runtime.getTasks([task.id]);
    expect(finished?.attempts).toBe(1);
    expect(finished?.workerId).toBeNull();
  });
});

describe.skipIf(!testDatabaseKinds.includes('postgres'))('database connection loss [postgres]', () => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await openTestRuntime('postgres');
  });
  afterAll(() => t.close());

  it(
    'terminating every backend mid-run loses no task and completes none twice',
    { timeout: 60_000 },
    async () => {
      const tasks = await Promise.all(
        Array.from({ length: 40 }, () =>
          t.runtime.executeTask({
            agentId: 'analyst',
            action: 'wait',
            input: { ms: 300, steps: 3 },
            maxAttempts: 3,
          }),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 150));
      const admin = new pg.Client({ connectionString: t.testDb.url });
      await admin.connect();
      const { rows } = await admin.query(
        `select pg_terminate_backend(pid) as killed from pg_stat_activity
       where datname = current_database() and pid <> pg_backend_pid()`,
      );
      await admin.end();
      expect(rows.length).toBeGreaterThan(1);

      await waitUntil(
        async () => {
          const found = await t.runtime.getTasks(tasks.map((task) => task.id)).catch(() => []);
          return found.length === 40 && found.every((task) => task?.status === 'succeeded');
        },
        40_000,
        'all tasks to succeed after the connection loss',
      );
      const completions = await t.db.query<{ n: number }>(
        `select count(*)::int as n from cas_agent_events where event_type = 'task_completed' group by task_id`,
      );
      expect(completions).toHaveLength(40);
      expect(completions.every((row) => row.n === 1)).toBe(true);
      // The feed listens again: a new task is picked up without waiting for a poll.
      const started = Date.now();
      const pong = await t.runtime.executeTask({ agentId: 'analyst', action: 'ping', wait: true });
      expect(pong.status).toBe('succeeded');
      expect(Date.now() - started).toBeLessThan(2000);
    },
  );
});

describe.skipIf(!testDatabaseKinds.includes('postgres'))('claiming a backlog [postgres]', () => {
  let producer: TestRuntime;
  beforeAll(async () => {
    producer = await openTestRuntime('postgres', { CAS_WORKERS: '0' });
  });
  afterAll(() => producer.close());

  // Ceiling for draining the backlog: a few seconds quiet; many times that beside a CPU hog.
  const DRAIN_CEILING_MS = 150_000;

  it(
    'workers claiming in batches while others complete never deadlock',
    { timeout: DRAIN_CEILING_MS + 30_000 },
    async () => {
      const agents = ['marketer', 'analyst', 'planner', 'developer', 'tester', 'qa'];
      const tasks = await Promise.all(
        Array.from({ length: 300 }, (_, index) =>
          producer.runtime.executeTask({ agentId: agents[index % agents.length]!, action: 'ping' }),
        ),
      );
      const deadlocks = async () => {
        // Statistics reach pg_stat_database shortly after each transaction ends.
        await new Promise((resolve) => setTimeout(resolve, 1200));
        const [row] = await producer.db.query<{ n: number }>(
          'select deadlocks::int as n from pg_stat_database where datname = current_database()',
        );
        return row!.n;
      };
      const before = await deadlocks();
      const consumers = await Promise.all(
        [1, 2, 3].map(() =>
          createRuntime({
            config: loadConfig({
              ...FAST_RUNTIME_ENV,
              DATABASE_URL: producer.testDb.url!,
              CAS_WORKER_CONCURRENCY: '20',
            }),
            logger: silentLogger(),
          }),
        ),
      );
      try {
        await waitUntil(
          async () => ((await countByStatus(producer.db)).succeeded ?? 0) === tasks.length,
          DRAIN_CEILING_MS,
          'the backlog to drain',
        );
      } finally {
        await Promise.all(consumers.map((consumer) => consumer.shutdown()));
      }
      expect(await deadlocks()).toBe(before);
      const [gaps] = await producer.db.query<{ n: number; max: number }>(
        'select count(*)::int as n, max(seq)::int as max from cas_agent_events',
      );
      expect(gaps!.n).toBe(gaps!.max);
    },
  );
});
