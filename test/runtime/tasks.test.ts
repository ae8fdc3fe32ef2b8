import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskFailure } from '../../src/runtime/handlers.js';
import type { AgentEvent } from '../../src/domains/event/event.js';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { until } from '../support/until.js';

/** How often the runtime writes a chatty handler's progress (progressIntervalMs in custom-runtime.ts). */
const PROGRESS_INTERVAL_MS = 100;

const eventTypes = async (t: TestRuntime, taskId: string) =>
  (await t.runtime.getEventHistory({ taskId, first: 500 })).items.map((event) => event.type);

describeEachDatabase('tasks', (kind) => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await openTestRuntime(kind);
  });
  afterAll(() => t.close());

  describe('executeTask', () => {
    it('runs ping through the queue with the full event trail and a measured duration', async () => {
      const task = await t.runtime.executeTask({
        agentId: 'marketer',
        action: 'ping',
        wait: true,
        userId: 'bob',
      });
      expect(task).toMatchObject({
        status: 'succeeded',
        result: { pong: true },
        attempts: 1,
        maxAttempts: 1,
        progress: 1,
      });
      expect(task.durationMs).toBeGreaterThanOrEqual(0);
      expect(task.startedAt!.getTime()).toBeGreaterThanOrEqual(task.createdAt.getTime());
      expect(task.finishedAt!.getTime()).toBeGreaterThanOrEqual(task.startedAt!.getTime());
      expect(await eventTypes(t, task.id)).toEqual(['task_queued', 'task_started', 'task_completed']);
      const [queued] = (await t.runtime.getEventHistory({ taskId: task.id, types: ['task_queued'] })).items;
      expect(queued?.userId).toBe('bob');
    });

    it('returns at once without wait, and the task finishes in the background', async () => {
      const task = await t.runtime.executeTask({ agentId: 'analyst', action: 'wait', input: { ms: 200 } });
      expect(['queued', 'running']).toContain(task.status);
      const done = await t.runtime.executeTask({ agentId: 'analyst', action: 'ping', wait: true });
      expect(done.status).toBe('succeeded');
      const [later] = await t.runtime.getTasks([task.id]);
      expect(['queued', 'running', 'succeeded']).toContain(later?.status);
    });

    it('reports progress from wait with steps and records the duration', async () => {
      const task = await t.runtime.executeTask({
        agentId: 'planner',
        action: 'wait',
        input: { ms: 400, steps: 4 },
        wait: true,
      });
      expect(task).toMatchObject({ status: 'succeeded', result: { waitedMs: 400, steps: 4 }, progress: 1 });
      expect(task.durationMs).toBeGreaterThanOrEqual(380);
      const progress = (await t.runtime.getEventHistory({ taskId: task.id, types: ['task_progress'] })).items;
      expect(progress.length).toBeGreaterThanOrEqual(2);
      const fractions = progress.map((event) => event.payload.progress as number);
      expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
      expect(fractions.at(-1)).toBe(1);
    });

    it('wait: true answers with the failed task when its attempt runs past timeoutMs', async () => {
      const task = await t.runtime.executeTask({
        agentId: 'developer',
        action: 'wait',
        input: { ms: 60_000 },
        wait: true,
        timeoutMs: 300,
      });
      expect(task).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT' } });
    });

    it('fails an attempt that exceeds timeoutMs with code TIMEOUT', async () => {
      const task = await t.runtime.executeTask({
        agentId: 'tester',
        action: 'wait',
        input: { ms: 3000 },
        timeoutMs: 150,
      });
      const final = await waitForFinal(t, task.id);
      expect(final).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT', retryable: true } });
    });

    it('the same idempotency key returns the same task, and a different request with it is a conflict', async () => {
      const first = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'ping',
        idempotencyKey: 'order-42',
      });
      const again = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'ping',
        idempotencyKey: 'order-42',
      });
      expect(again.id).toBe(first.id);
      await expect(
        t.runtime.executeTask({ agentId: 'qa', action: 'wait', idempotencyKey: 'order-42' }),
      ).rejects.toMatchObject({ code: 'CONFLICT' });
      const concurrent = await Promise.all(
        Array.from({ length: 10 }, () =>
          t.runtime.executeTask({ agentId: 'qa', action: 'ping', idempotencyKey: 'burst' }),
        ),
      );
      expect(new Set(concurrent.map((task) => task.id)).size).toBe(1);
      const [row] = await t.db.query<{ n: number }>(
        `select count(*)::int as n from cas_tasks where idempotency_key = 'burst'`,
      );
      expect(row?.n).toBe(1);
    });

    it('the same idempotency key with a different input or options is a CONFLICT, not the earlier task', async () => {
      const request = {
        agentId: 'qa',
        action: 'wait',
        input: { ms: 1, steps: 1 },
        idempotencyKey: 'report-7',
        maxAttempts: 2,
      };
      const first = await t.runtime.executeTask(request);
      // The same request again, its input's keys in another order: the same task.
      const again = await t.runtime.executeTask({ ...request, input: { steps: 1, ms: 1 } });
      expect(again.id).toBe(first.id);
      const variants = [
        { input: { ms: 2, steps: 1 } },
        { input: { ms: 1 } },
        { input: undefined },
        { maxAttempts: 3 },
        { priority: 5 },
        { timeoutMs: 60_000 },
        { retryDelayMs: 5 },
      ];
      for (const variant of variants) {
        await expect(t.runtime.executeTask({ ...request, ...variant })).rejects.toMatchObject({
          code: 'CONFLICT',
          message: expect.stringContaining(first.id),
        });
      }
      const [row] = await t.db.query<{ n: number }>(
        `select count(*)::int as n from cas_tasks where idempotency_key = 'report-7'`,
      );
      expect(row?.n).toBe(1);
    });

    it('idempotency keys are scoped per caller; callers without an id share one scope', async () => {
      const request = { agentId: 'qa', action: 'ping', idempotencyKey: 'nightly' };
      const alice = await t.runtime.executeTask({ ...request, userId: 'alice' });
      const bob = await t.runtime.executeTask({ ...request, userId: 'bob' });
      const anonymous = await t.runtime.executeTask(request);
      expect(new Set([alice.id, bob.id, anonymous.id]).size).toBe(3);
      expect((await t.runtime.executeTask({ ...request, userId: 'alice' })).id).toBe(alice.id);
      expect((await t.runtime.executeTask(request)).id).toBe(anonymous.id);
      // Another caller's key says nothing about this caller's request.
      const carol = await t.runtime.executeTask({ ...request, action: 'wait', userId: 'carol' });
      expect(carol.id).not.toBe(alice.id);
    });

    it('an idempotency key is remembered for 24 hours, then free for a new task', async () => {
      const first = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'ping',
        idempotencyKey: 'daily-report',
      });
      await t.db.query(`update cas_tasks set created_at = now() - interval '23 hours' where id = $1`, [
        first.id,
      ]);
      const within = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'ping',
        idempotencyKey: 'daily-report',
      });
      expect(within.id).toBe(first.id);
      await t.db.query(`update cas_tasks set created_at = now() - interval '25 hours' where id = $1`, [
        first.id,
      ]);
      const after = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'ping',
        idempotencyKey: 'daily-report',
      });
      expect(after.id).not.toBe(first.id);
      expect(after.idempotencyKey).toBe('daily-report');
      expect((await t.runtime.getTasks([first.id]))[0]?.idempotencyKey).toBeNull();
    });

    it('higher priority tasks are claimed first', async () => {
      await t.runtime.registerAgent({ id: 'prio', name: 'Prio', role: 'qa' });
      // No worker claims before all three are queued: they are queued to run in an hour, then all
      // made due in one statement, however long queueing took.
      const runAt = new Date(Date.now() + 3_600_000);
      const low = await t.runtime.executeTask({ agentId: 'prio', action: 'ping', priority: -5, runAt });
      const high = await t.runtime.executeTask({ agentId: 'prio', action: 'ping', priority: 10, runAt });
      const mid = await t.runtime.executeTask({ agentId: 'prio', action: 'ping', priority: 0, runAt });
      await t.db.query(`update cas_tasks set run_at = now() where id = any($1::uuid[])`, [
        [low.id, high.id, mid.id],
      ]);
      await Promise.all([low, high, mid].map((task) => waitForFinal(t, task.id)));
      const started = (await t.runtime.getEventHistory({ agentId: 'prio', types: ['task_started'] })).items;
      expect(started.map((event) => event.taskId)).toEqual([high.id, mid.id, low.id]);
    });
  });

  describe('text a handler produces with a NUL character (PostgreSQL cannot store U+0000)', () => {
    it('logs, progress and error messages keep it as U+FFFD; a result with it fails INVALID_RESULT', async () => {
      t.runtime.defineActions('qa', {
        nulText: (_input, ctx) => {
          ctx.log('info', 'before\u0000after', { ['key\u0000']: 'value\u0000' });
          ctx.progress(0.5, 'half\u0000way');
          throw new TaskFailure('broken\u0000message', 'NUL_TEXT', false);
        },
        nulResult: () => ({ text: 'a\u0000b' }),
      });
      const failed = await t.runtime.executeTask({ agentId: 'qa', action: 'nulText', wait: true });
      expect(failed).toMatchObject({
        status: 'failed',
        progressMessage: 'half\ufffdway',
        error: { message: 'broken\ufffdmessage', code: 'NUL_TEXT' },
      });
      const logs = (await t.runtime.getLogs({ taskId: failed.id })).items;
      expect(logs.map((entry) => entry.message)).toContain('before\ufffdafter');
      expect(logs.find((entry) => entry.message === 'before\ufffdafter')?.context).toMatchObject({
        'key\ufffd': 'value\ufffd',
      });
      const refused = await t.runtime.executeTask({ agentId: 'qa', action: 'nulResult', wait: true });
      expect(refused).toMatchObject({ status: 'failed', result: null, error: { code: 'INVALID_RESULT' } });
    });
  });

  describe('failures and retries', () => {
    it('fail with times 2 and maxAttempts 3 succeeds on the third attempt with backoff in the events', async () => {
      const task = await t.runtime.executeTask({
        agentId: 'security',
        action: 'fail',
        input: { times: 2, message: 'flaky' },
        maxAttempts: 3,
        retryDelayMs: 40,
        wait: true,
      });
      expect(task).toMatchObject({
        status: 'succeeded',
        attempts: 3,
        result: { attempt: 3, failedAttempts: 2 },
      });
      expect(await eventTypes(t, task.id)).toEqual([
        'task_queued',
        'task_started',
        'task_retry_scheduled',
        'task_started',
        'task_retry_scheduled',
        'task_started',
        'task_completed',
      ]);
      const retries = (await t.runtime.getEventHistory({ taskId: task.id, types: ['task_retry_scheduled'] }))
        .items;
      const delays = retries.map((event) => event.payload.delayMs as number);
      // Exponential with jitter: base * 2^(attempt-1) scaled into [0.5, 1].
      expect(delays[0]).toBeGreaterThanOrEqual(20);
      expect(delays[0]).toBeLessThanOrEqual(40);
      expect(delays[1]).toBeGreaterThanOrEqual(40);
      expect(delays[1]).toBeLessThanOrEqual(80);
      expect(retries[0]?.payload.error).toMatchObject({ message: 'flaky', code: 'DIAGNOSTIC_FAILURE' });
    });

    it('fail with times 5 and maxAttempts 3 ends FAILED with the error', async () => {
      const task = await t.runtime.executeTask({
        agentId: 'security',
        action: 'fail',
        input: { times: 5, message: 'still broken' },
        maxAttempts: 3,
        retryDelayMs: 10,
        wait: true,
      });
      expect(task).toMatchObject({
        status: 'failed',
        attempts: 3,
        error: { message: 'still broken', code: 'DIAGNOSTIC_FAILURE', retryable: true },
      });
      expect((await eventTypes(t, task.id)).filter((type) => type === 'task_failed')).toHaveLength(1);
    });

    it('a non-retryable failure ends the task at once; a thrown error is captured, never thrown', async () => {
      await t.runtime.registerAgent(
        { id: 'strict', name: 'Strict', role: 'qa' },
        {
          actions: {
            refuse: () => {
              throw new TaskFailure('will never work', 'REFUSED', false);
            },
            crash: () => {
              throw new Error('boom');
            },
            answer: (input) => ({ echoed: input }),
          },
        },
      );
      const refused = await t.runtime.executeTask({
        agentId: 'strict',
        action: 'refuse',
        maxAttempts: 5,
        wait: true,
      });
      expect(refused).toMatchObject({
        status: 'failed',
        attempts: 1,
        error: { code: 'REFUSED', retryable: false },
      });
      const crashed = await t.runtime.executeTask({ agentId: 'strict', action: 'crash', wait: true });
      expect(crashed).toMatchObject({ status: 'failed', error: { message: 'boom', code: 'HANDLER_ERROR' } });
      const answered = await t.runtime.executeTask({
        agentId: 'strict',
        action: 'answer',
        input: [1, 'two'],
        wait: true,
      });
      expect(answered.result).toEqual({ echoed: [1, 'two'] });
      const logs = await t.runtime.getLogs({ taskId: crashed.id });
      expect(logs.items.map((entry) => [entry.level, entry.message])).toEqual([
        ['error', 'attempt 1 failed: boom'],
      ]);
    });

    it('handlers write logs and state through ctx', async () => {
      await t.runtime.registerAgent(
        { id: 'scribe', name: 'Scribe', role: 'analyst' },
        {
          actions: {
            note: async (input, ctx) => {
              ctx.log('info', 'starting', { input });
              for (let index = 0; index < 250; index += 1) ctx.log('debug', `line ${index}`);
              const state = await ctx.state.update({ notes: 1 }, 0);
              ctx.log('warn', 'done', { version: state.version });
              return { version: state.version };
            },
          },
        },
      );
      const task = await t.runtime.executeTask({ agentId: 'scribe', action: 'note', input: 'x', wait: true });
      expect(task).toMatchObject({ status: 'succeeded', result: { version: 1 } });
      const logs = await t.runtime.getLogs({ taskId: task.id, first: 500 });
      expect(logs.items).toHaveLength(252);
      expect(logs.items[0]).toMatchObject({
        level: 'info',
        message: 'starting',
        context: { input: 'x', attempt: 1 },
      });
      expect(logs.items[251]).toMatchObject({ level: 'warn', message: 'done', context: { version: 1 } });
      expect((await t.runtime.getAgentState('scribe'))?.data).toEqual({ notes: 1 });
    });
  });

  describe('chatty handlers', () => {
    it('coalesces 1,000 progress reports a second into a few writes, the latest always landing', async () => {
      await t.runtime.registerAgent(
        { id: 'chatty', name: 'Chatty', role: 'qa' },
        {
          actions: {
            spin: async (_input, ctx) => {
              for (let step = 1; step <= 1000; step += 1) {
                ctx.progress(step / 1000, `step ${step}`);
                if (step % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 10));
              }
              return { steps: 1000 };
            },
          },
        },
      );
      const task = await t.runtime.executeTask({ agentId: 'chatty', action: 'spin', wait: true });
      expect(task).toMatchObject({ status: 'succeeded', progress: 1, progressMessage: 'step 1000' });
      const writes = (
        await t.runtime.getEventHistory({ taskId: task.id, types: ['task_progress'], first: 500 })
      ).items;
      // At most one write per progress interval (100 ms) while the task ran, however long that took
      // on this machine; and far fewer than the 1,000 reports.
      const ranMs = task.finishedAt!.getTime() - task.startedAt!.getTime();
      expect(writes.length).toBeGreaterThanOrEqual(1);
      expect(writes.length).toBeLessThanOrEqual(Math.floor(ranMs / PROGRESS_INTERVAL_MS) + 2);
      expect(writes.length).toBeLessThan(100);
      expect(writes.at(-1)?.payload).toMatchObject({ progress: 1, message: 'step 1000' });
    });

    it('refuses a progress value outside 0..1 by failing the attempt', async () => {
      await t.runtime.registerAgent(
        { id: 'overshoot', name: 'Overshoot', role: 'qa' },
        { actions: { go: (_input, ctx) => ctx.progress(1.5) } },
      );
      const task = await t.runtime.executeTask({ agentId: 'overshoot', action: 'go', wait: true });
      expect(task).toMatchObject({
        status: 'failed',
        error: { message: expect.stringContaining('from 0 to 1') },
      });
    });
  });

  describe('delayed start', () => {
    it('does not start a task before runAt', async () => {
      const later = await t.runtime.executeTask({
        agentId: 'marketer',
        action: 'ping',
        runAt: new Date(Date.now() + 3_600_000),
      });
      // A task queued after it but due now runs to its end while the later one stays queued.
      await t.runtime.executeTask({ agentId: 'marketer', action: 'ping', wait: true });
      expect((await t.runtime.getTasks([later.id]))[0]?.status).toBe('queued');
      await t.runtime.cancelTask(later.id);

      const runAt = new Date(Date.now() + 700);
      const task = await t.runtime.executeTask({ agentId: 'marketer', action: 'ping', runAt });
      const final = await waitForFinal(t, task.id);
      expect(final.status).toBe('succeeded');
      expect(final.startedAt!.getTime()).toBeGreaterThanOrEqual(runAt.getTime() - 5);
    });
  });

  describe('cancellation', () => {
    it('cancels a queued task at once', async () => {
      const task = await t.runtime.executeTask({
        agentId: 'engineer',
        action: 'ping',
        runAt: new Date(Date.now() + 60_000),
      });
      const cancelled = await t.runtime.cancelTask(task.id, { userId: 'ops' });
      expect(cancelled.status).toBe('cancelled');
      expect(cancelled.cancelRequestedAt).toBeInstanceOf(Date);
      expect(await eventTypes(t, task.id)).toEqual(['task_queued', 'task_cancelled']);
    });

    it('cancels a running task through its signal', async () => {
      // Waits an hour unless the signal stops it: a cancelled end within the test is the proof.
      const task = await t.runtime.executeTask({
        agentId: 'engineer',
        action: 'wait',
        input: { ms: 3_600_000, steps: 200 },
      });
      await waitForStatus(t, task.id, 'running');
      const requested = await t.runtime.cancelTask(task.id);
      expect(requested.status).toBe('running');
      expect(requested.cancelRequestedAt).toBeInstanceOf(Date);
      const final = await waitForFinal(t, task.id);
      expect(final.status).toBe('cancelled');
      expect(final.progress ?? 0).toBeLessThan(1);
      expect((await eventTypes(t, task.id)).slice(-2)).toEqual(['task_cancel_requested', 'task_cancelled']);
    });

    it('stops a handler that ignores the signal after the grace period and discards its result', async () => {
      await t.runtime.registerAgent(
        { id: 'stubborn', name: 'Stubborn', role: 'qa' },
        {
          actions: {
            // Ignores the signal for an hour: only the grace period can end it within the test.
            ignore: () =>
              new Promise((resolve) => setTimeout(() => resolve({ late: true }), 3_600_000).unref()),
          },
        },
      );
      const task = await t.runtime.executeTask({ agentId: 'stubborn', action: 'ignore' });
      await waitForStatus(t, task.id, 'running');
      await t.runtime.cancelTask(task.id);
      const final = await waitForFinal(t, task.id);
      expect(final).toMatchObject({ status: 'cancelled', result: null });
    });

    it('a handler that first reads its signal after a cancel sees it aborted, also through a copy of ctx', async () => {
      // The signal is made when first read (src/runtime/task-run.ts): a stop before that must show.
      let started!: () => void;
      const handlerStarted = new Promise<void>((resolve) => (started = resolve));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let seen: { aborted: boolean; reason: unknown } | undefined;
      await t.runtime.registerAgent(
        { id: 'late-reader', name: 'Late reader', role: 'qa' },
        {
          actions: {
            read: async (_input, ctx) => {
              started();
              await gate;
              const { signal } = { ...ctx };
              seen = { aborted: signal.aborted, reason: (signal.reason as Error | undefined)?.message };
              return {};
            },
          },
        },
      );
      const task = await t.runtime.executeTask({ agentId: 'late-reader', action: 'read' });
      await handlerStarted;
      // Stops the attempt in this process before the call returns (CustomRuntime.cancelTask).
      await t.runtime.cancelTask(task.id);
      release();
      expect(await waitForFinal(t, task.id)).toMatchObject({ status: 'cancelled', result: null });
      expect(seen).toEqual({ aborted: true, reason: 'task was cancelled' });
    });

    it('cancelling a finished task is a conflict and changes nothing', async () => {
      const task = await t.runtime.executeTask({ agentId: 'engineer', action: 'ping', wait: true });
      await expect(t.runtime.cancelTask(task.id)).rejects.toMatchObject({ code: 'CONFLICT' });
      const [after] = await t.runtime.getTasks([task.id]);
      expect(after?.status).toBe('succeeded');
    });
  });

  describe('agent status follows the work', () => {
    it('is BUSY while a task runs and IDLE after, with last activity updated', async () => {
      await t.runtime.registerAgent({ id: 'busybee', name: 'Busy', role: 'qa' });
      const before = await t.runtime.getAgentStatus('busybee');
      const task = await t.runtime.executeTask({ agentId: 'busybee', action: 'wait', input: { ms: 400 } });
      await waitForStatus(t, task.id, 'running');
      const busy = await t.runtime.getAgentStatus('busybee');
      expect(busy).toMatchObject({ status: 'busy', runningTasks: 1 });
      await waitForFinal(t, task.id);
      const idle = await t.runtime.getAgentStatus('busybee');
      expect(idle).toMatchObject({ status: 'idle', runningTasks: 0 });
      expect(idle.lastActivityAt!.getTime()).toBeGreaterThan(before.lastActivityAt!.getTime());
    });

    it("reaches the agent's status row too, which the worker refreshes, and unregistering stops it there", async () => {
      await t.runtime.registerAgent({ id: 'copied', name: 'Copied', role: 'qa' });
      // The row as the seed's UIs read it, once it shows `expected` (the worker copies the live
      // status into it about once a second).
      const rowShows = (expected: { status: string; running_tasks: number }) =>
        until(`cas_agent_status of copied to show ${JSON.stringify(expected)}`, async () => {
          const [row] = await t.db.query<{ status: string; running_tasks: number }>(
            `select status, running_tasks from cas_agent_status where agent_id = 'copied'`,
          );
          return row?.status === expected.status && row.running_tasks === expected.running_tasks
            ? row
            : undefined;
        });
      const task = await t.runtime.executeTask({ agentId: 'copied', action: 'wait', input: { ms: 60_000 } });
      await waitForStatus(t, task.id, 'running');
      await rowShows({ status: 'busy', running_tasks: 1 });
      await t.runtime.cancelTask(task.id);
      await waitForFinal(t, task.id);
      await rowShows({ status: 'idle', running_tasks: 0 });
      await t.runtime.unregisterAgent('copied');
      const [refreshed] = await t.db.query<{ changed: number }>(
        'select cas_refresh_agent_status() as changed',
      );
      expect(refreshed!.changed).toBe(0);
      expect(await t.runtime.getAgentStatus('copied')).toMatchObject({ status: 'stopped', runningTasks: 0 });
      await rowShows({ status: 'stopped', running_tasks: 0 });
    });
  });

  describe('streamTask', () => {
    it('yields the events of a task in order and ends after the final one', async () => {
      const task = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'wait',
        input: { ms: 300, steps: 3 },
      });
      const events: AgentEvent[] = [];
      for await (const event of t.runtime.streamTask(task.id)) events.push(event);
      expect(events[0]?.type).toBe('task_queued');
      expect(events.at(-1)?.type).toBe('task_completed');
      const seqs = events.map((event) => event.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    });

    it('resumes after a cursor with exactly the rest', async () => {
      const task = await t.runtime.executeTask({ agentId: 'qa', action: 'ping', wait: true });
      const all: AgentEvent[] = [];
      for await (const event of t.runtime.streamTask(task.id)) all.push(event);
      const after = (await t.runtime.getEventHistory({ taskId: task.id })).items[0]!;
      const rest: string[] = [];
      const cursor = (await t.runtime.getEventHistory({ taskId: task.id, first: 1 })).endCursor!;
      for await (const event of t.runtime.streamTask(task.id, { after: cursor })) rest.push(event.id);
      expect(rest).toEqual(all.slice(1).map((event) => event.id));
      expect(after.id).toBe(all[0]?.id);
    });

    it('an unknown task is NOT_FOUND', async () => {
      const iterate = async () => {
        for await (const event of t.runtime.streamTask('00000000-0000-4000-8000-000000000000')) void event;
      };
      await expect(iterate()).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });

  it('a workflow without a definition is refused as bad input', async () => {
    await expect(t.runtime.executeWorkflow({ definition: {} })).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
    });
  });
});

async function waitForStatus(t: TestRuntime, id: string, status: string, ms = 25_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const [task] = await t.runtime.getTasks([id]);
    if (task?.status === status) return task;
    if (Date.now() > deadline) throw new Error(`task ${id} did not reach ${status}; it is ${task?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function waitForFinal(t: TestRuntime, id: string, ms = 25_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const [task] = await t.runtime.getTasks([id]);
    if (task && ['succeeded', 'failed', 'cancelled'].includes(task.status)) return task;
    if (Date.now() > deadline) throw new Error(`task ${id} did not finish; it is ${task?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
