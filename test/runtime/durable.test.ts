/**
 * Durable execution: steps memoised with their task, agents calling agents (ctx.call, ctx.callAll)
 * without holding a worker slot while they wait, durable sleeps and signals, cancellation of a
 * waiting parent and its children, and the call depth and cycle limits.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Task } from '../../src/domains/task/task.js';
import { ChildTaskFailed, SignalTimeout, TaskFailure, type TaskHandler } from '../../src/runtime/handlers.js';
import { describeEachDatabase } from '../support/databases.js';
import { databaseSnapshot, openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { until } from '../support/until.js';

/** Polls until `check` holds; a generous deadline, not a margin. */

const taskWhere = (t: TestRuntime, id: string, ok: (task: Task) => boolean) =>
  until(`task ${id}`, async () => {
    const [task] = await t.runtime.getTasks([id]);
    return task && ok(task) ? task : undefined;
  });

const final = (task: Task) => ['succeeded', 'failed', 'cancelled'].includes(task.status);

const events = async (t: TestRuntime, taskId: string) =>
  (await t.runtime.getEventHistory({ taskId, first: 500 })).items;

const run = (t: TestRuntime, agentId: string, action: string, input?: unknown) =>
  t.runtime.executeTask({ agentId, action, input, wait: true });

/** A gate a handler waits at until the test opens it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describeEachDatabase('durable execution', (kind) => {
  describe('steps and calls on one worker slot', () => {
    let t: TestRuntime;
    const sideEffects = new Map<string, number>();
    const count = (name: string) => sideEffects.set(name, (sideEffects.get(name) ?? 0) + 1);

    beforeAll(async () => {
      t = await openTestRuntime(kind, { CAS_WORKERS: '1', CAS_WORKER_CONCURRENCY: '1' });
      const chain: Record<string, TaskHandler> = {
        first: async (_input, ctx) => ({ first: await ctx.call('developer', 'second', { from: 'first' }) }),
      };
      t.runtime.defineActions('planner', chain);
      t.runtime.defineActions('developer', {
        second: async (input, ctx) => ({ second: await ctx.call('tester', 'third', input) }),
      });
      t.runtime.defineActions('tester', {
        third: (input) => ({ third: input }),
        retried: (_input, ctx) => {
          if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} fails`);
          return { attempts: ctx.attempt };
        },
        flaky: () => {
          throw new TaskFailure('child gave up', 'CHILD_GAVE_UP', false);
        },
      });
      t.runtime.defineActions('qa', {
        steps: async (_input, ctx) => {
          const a = await ctx.step('charge card', () => {
            count('charge card');
            return { charged: 42 };
          });
          const b = await ctx.step('send mail', () => {
            count('send mail');
            return 'sent';
          });
          if (ctx.attempt === 1) throw new Error('crash after two steps');
          return { a, b, attempt: ctx.attempt };
        },
        catches: async (_input, ctx) => {
          try {
            await ctx.call('tester', 'flaky');
            return 'not thrown';
          } catch (error) {
            if (!(error instanceof ChildTaskFailed)) throw error;
            return { caught: error.code, childCode: error.childCode, child: error.childTaskId };
          }
        },
        withOptions: (_input, ctx) =>
          ctx.call('tester', 'retried', null, { maxAttempts: 3, timeoutMs: 60_000 }),
        fireAndForget: (_input, ctx) => {
          void ctx.call('tester', 'third', 'unawaited');
          return 'returned at once';
        },
        repeated: async (_input, ctx) => [await ctx.step('same', () => 1), await ctx.step('same', () => 2)],
      });
    });
    afterAll(() => t.close());

    it('a chain of three agents calling each other completes with one worker slot', async () => {
      const task = await run(t, 'planner', 'first');
      expect(task).toMatchObject({
        status: 'succeeded',
        result: { first: { second: { third: { from: 'first' } } } },
      });
      const [children] = await t.runtime.getChildren([task.id], 10);
      expect(children!.map((child) => [child.agentId, child.action, child.depth])).toEqual([
        ['developer', 'second', 1],
      ]);
      const [grandchildren] = await t.runtime.getChildren([children![0]!.id], 10);
      expect(grandchildren![0]).toMatchObject({ agentId: 'tester', parentId: children![0]!.id, depth: 2 });
      const types = (await events(t, task.id)).map((event) => event.type);
      // It waited for its child and was resumed, without a second attempt.
      expect(types).toEqual([
        'task_queued',
        'task_started',
        'task_waiting',
        'task_resumed',
        'task_started',
        'task_completed',
      ]);
      expect(task.attempts).toBe(1);
    });

    it('completed steps are not run again when the task runs again, and each is an event', async () => {
      const task = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'steps',
        maxAttempts: 2,
        retryDelayMs: 0,
        wait: true,
      });
      expect(task).toMatchObject({
        status: 'succeeded',
        result: { a: { charged: 42 }, b: 'sent', attempt: 2 },
      });
      expect(sideEffects.get('charge card')).toBe(1);
      expect(sideEffects.get('send mail')).toBe(1);
      const steps = (await events(t, task.id))
        .filter((event) => event.type.startsWith('step_'))
        .map((event) => [event.type, event.payload.step]);
      expect(steps).toEqual([
        ['step_started', 'charge card'],
        ['step_completed', 'charge card'],
        ['step_started', 'send mail'],
        ['step_completed', 'send mail'],
      ]);
    });

    it('a call takes maxAttempts and timeoutMs for its child', async () => {
      const task = await run(t, 'qa', 'withOptions');
      expect(task).toMatchObject({ status: 'succeeded', result: { attempts: 3 } });
      const [[child]] = (await t.runtime.getChildren([task.id], 1)) as [[Task]];
      expect(child).toMatchObject({ maxAttempts: 3, timeoutMs: 60_000, attempts: 3 });
    });

    it('a call the handler does not await is queued before the task completes', async () => {
      const task = await run(t, 'qa', 'fireAndForget');
      expect(task).toMatchObject({ status: 'succeeded', result: 'returned at once' });
      const [children] = await t.runtime.getChildren([task.id], 10);
      expect(children).toHaveLength(1);
      const child = await taskWhere(t, children![0]!.id, final);
      expect(child).toMatchObject({ status: 'succeeded', result: { third: 'unawaited' } });
    });

    it('a name used twice in one task is two steps', async () => {
      const task = await run(t, 'qa', 'repeated');
      expect(task.result).toEqual([1, 2]);
      const keys = (await events(t, task.id))
        .filter((event) => event.type === 'step_completed')
        .map((event) => event.payload.step);
      expect(keys).toEqual(['same', 'same#2']);
    });

    it("a child's failure is thrown in the parent as a ChildTaskFailed it can catch", async () => {
      const task = await run(t, 'qa', 'catches');
      expect(task.status).toBe('succeeded');
      const result = task.result as { caught: string; childCode: string; child: string };
      expect(result).toMatchObject({ caught: 'CHILD_TASK_FAILED', childCode: 'CHILD_GAVE_UP' });
      const [child] = await t.runtime.getTasks([result.child]);
      expect(child).toMatchObject({ status: 'failed', parentId: task.id });
    });
  });

  describe('fan-out', () => {
    let t: TestRuntime;
    beforeAll(async () => {
      t = await openTestRuntime(kind, { CAS_WORKERS: '2', CAS_WORKER_CONCURRENCY: '1' });
      t.runtime.defineActions('analyst', {
        square: (input) => (input as { n: number }).n ** 2,
        fanOut: async (input, ctx) => {
          const { n } = input as { n: number };
          const squares = await ctx.callAll<number[]>(
            Array.from({ length: n }, (_, i) => ({ agentId: 'analyst', action: 'square', input: { n: i } })),
          );
          return squares.reduce((sum, value) => sum + value, 0);
        },
      });
    });
    afterAll(() => t.close());

    it('a fan-out of 100 children with 2 workers completes with every result in order', async () => {
      const task = await run(t, 'analyst', 'fanOut', { n: 100 });
      expect(task.status).toBe('succeeded');
      expect(task.result).toBe(Array.from({ length: 100 }, (_, i) => i * i).reduce((a, b) => a + b, 0));
      const [children] = await t.runtime.getChildren([task.id], 100);
      expect(children).toHaveLength(100);
      expect(children!.every((child) => child.status === 'succeeded')).toBe(true);
      expect(task.attempts).toBe(1);
    });
  });

  describe('sleeps and signals', () => {
    let t: TestRuntime;
    const started = new Map<string, ReturnType<typeof gate>>();
    const gateFor = (key: string) => {
      if (!started.has(key)) started.set(key, gate());
      return started.get(key)!;
    };

    beforeAll(async () => {
      t = await openTestRuntime(kind, { CAS_WORKERS: '1', CAS_WORKER_CONCURRENCY: '2' });
      t.runtime.defineActions('qa', {
        approval: async (input, ctx) => {
          const { key, timeoutMs } = input as { key: string; timeoutMs?: number };
          // Held here until the test opens the gate: a signal can be sent before the wait starts.
          await ctx.step('prepare', () => gateFor(key).opened.then(() => 'prepared'));
          try {
            return { approved: await ctx.waitForSignal('approval', { timeoutMs }) };
          } catch (error) {
            if (error instanceof SignalTimeout) return { timedOut: error.signalName };
            throw error;
          }
        },
        nap: async (input, ctx) => {
          await ctx.sleep((input as { ms: number }).ms);
          return 'rested';
        },
        parent: async (_input, ctx) => ctx.call('tester', 'wait', { ms: 600_000, steps: 0 }),
      });
    });
    afterAll(() => t.close());

    it('a signal sent before the wait started is delivered to it', async () => {
      const task = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'approval',
        input: { key: 'before' },
      });
      await taskWhere(t, task.id, (current) => current.status === 'running');
      await t.runtime.signalTask(task.id, 'approval', { by: 'alice' });
      gateFor('before').open();
      const done = await taskWhere(t, task.id, final);
      expect(done).toMatchObject({ status: 'succeeded', result: { approved: { by: 'alice' } } });
      const types = (await events(t, task.id)).map((event) => event.type);
      expect(types).not.toContain('task_waiting');
    });

    it('a waiting task holds no slot, shows what it waits for, and resumes on the signal', async () => {
      gateFor('during').open();
      const task = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'approval',
        input: { key: 'during' },
      });
      const waiting = await taskWhere(t, task.id, (current) => current.status === 'waiting');
      expect(waiting.waitingFor).toMatchObject({ signals: ['approval'], childTaskIds: [], until: null });
      expect(waiting.workerId).toBeNull();
      await t.runtime.signalTask(task.id, 'approval', 'yes');
      const done = await taskWhere(t, task.id, final);
      expect(done).toMatchObject({ status: 'succeeded', result: { approved: 'yes' }, attempts: 1 });
      const types = (await events(t, task.id)).map((event) => event.type);
      expect(types).toEqual(expect.arrayContaining(['task_waiting', 'task_signal_received', 'task_resumed']));
      expect(types.indexOf('task_signal_received')).toBeLessThan(types.indexOf('task_resumed'));
      // The claim that resumes it says so, and counts no new attempt.
      const started = (await events(t, task.id)).filter((event) => event.type === 'task_started');
      expect(started.map((event) => event.payload)).toEqual([
        expect.objectContaining({ attempt: 1, resumed: false }),
        expect.objectContaining({ attempt: 1, resumed: true }),
      ]);
    });

    it('a signal to a finished task is a CONFLICT and changes nothing', async () => {
      gateFor('after').open();
      const task = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'approval',
        input: { key: 'after' },
      });
      await taskWhere(t, task.id, (current) => current.status === 'waiting');
      await t.runtime.signalTask(task.id, 'approval', 1);
      await taskWhere(t, task.id, final);
      const before = (await events(t, task.id)).length;
      await expect(t.runtime.signalTask(task.id, 'approval', 2)).rejects.toMatchObject({ code: 'CONFLICT' });
      expect((await events(t, task.id)).length).toBe(before);
    });

    it('a wait that times out throws a SignalTimeout the handler can catch', async () => {
      gateFor('timeout').open();
      const task = await run(t, 'qa', 'approval', { key: 'timeout', timeoutMs: 200 });
      expect(task).toMatchObject({ status: 'succeeded', result: { timedOut: 'approval' } });
    });

    it('a durable sleep waits with a timer and then continues', async () => {
      const task = await t.runtime.executeTask({ agentId: 'qa', action: 'nap', input: { ms: 300 } });
      const waiting = await taskWhere(
        t,
        task.id,
        (current) => current.status !== 'queued' && current.status !== 'running',
      );
      if (waiting.status === 'waiting') expect(waiting.waitingFor?.until).toBeInstanceOf(Date);
      const done = await taskWhere(t, task.id, final);
      expect(done).toMatchObject({ status: 'succeeded', result: 'rested' });
      const types = (await events(t, task.id)).map((event) => event.type);
      expect(types).toContain('task_waiting');
    });

    it('cancelling a waiting parent cancels its running child', async () => {
      const task = await t.runtime.executeTask({ agentId: 'qa', action: 'parent' });
      const waiting = await taskWhere(t, task.id, (current) => current.status === 'waiting');
      const [childId] = waiting.waitingFor!.childTaskIds;
      await taskWhere(t, childId!, (child) => child.status === 'running');
      const cancelled = await t.runtime.cancelTask(task.id);
      expect(cancelled.status).toBe('cancelled');
      const child = await taskWhere(t, childId!, final);
      expect(child).toMatchObject({ status: 'cancelled', parentId: task.id });
    });

    it('refuses a bad signal with a coded error and writes nothing', async () => {
      const task = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'ping',
        runAt: new Date(Date.now() + 86_400_000),
      });
      const before = await databaseSnapshot(t.db);
      const refused = async (id: string, name: string, payload: unknown, code: string) =>
        expect(t.runtime.signalTask(id, name, payload)).rejects.toMatchObject({ code });
      await refused('not-a-uuid', 'approval', 1, 'BAD_USER_INPUT');
      await refused(task.id, '', 1, 'BAD_USER_INPUT');
      await refused(task.id, 'x'.repeat(101), 1, 'BAD_USER_INPUT');
      await refused(task.id, 'approval', { text: 'a\u0000b' }, 'BAD_USER_INPUT');
      await refused(task.id, 'approval', 'x'.repeat(2_000_000), 'BAD_USER_INPUT');
      await refused('00000000-0000-4000-8000-000000000000', 'approval', 1, 'NOT_FOUND');
      expect(await databaseSnapshot(t.db)).toBe(before);
    });

    it('cancelling while it waits for a signal ends it, and later signals are refused', async () => {
      gateFor('cancel').open();
      const task = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'approval',
        input: { key: 'cancel' },
      });
      await taskWhere(t, task.id, (current) => current.status === 'waiting');
      await t.runtime.cancelTask(task.id);
      await expect(t.runtime.signalTask(task.id, 'approval', 1)).rejects.toMatchObject({ code: 'CONFLICT' });
      const [after] = await t.runtime.getTasks([task.id]);
      expect(after).toMatchObject({ status: 'cancelled', waitingFor: null });
    });
  });

  describe('limits', () => {
    let t: TestRuntime;
    beforeAll(async () => {
      t = await openTestRuntime(kind, { CAS_MAX_CALL_DEPTH: '3', CAS_WORKER_CONCURRENCY: '4' });
      t.runtime.defineActions('engineer', {
        dive: async (input, ctx) => {
          const { level } = input as { level: number };
          return ctx.call('engineer', 'dive', { level: level + 1 });
        },
        loop: async (input, ctx) => ctx.call('security', 'loop', input),
      });
      t.runtime.defineActions('security', {
        loop: async (input, ctx) => ctx.call('engineer', 'loop', input),
      });
    });
    afterAll(() => t.close());

    it('a call deeper than CAS_MAX_CALL_DEPTH fails with CALL_DEPTH_EXCEEDED, up the chain', async () => {
      const task = await run(t, 'engineer', 'dive', { level: 0 });
      expect(task.status).toBe('failed');
      expect(task.error).toMatchObject({ code: 'CHILD_TASK_FAILED' });
      let deepest = task;
      for (;;) {
        const [children] = await t.runtime.getChildren([deepest.id], 10);
        if (!children?.length) break;
        deepest = children[0]!;
      }
      expect(deepest).toMatchObject({ depth: 3, status: 'failed', error: { code: 'CALL_DEPTH_EXCEEDED' } });
    });

    it('a call that repeats an ancestor with the same input fails with CALL_CYCLE', async () => {
      const task = await run(t, 'engineer', 'loop', { same: true });
      expect(task.status).toBe('failed');
      const [children] = await t.runtime.getChildren([task.id], 10);
      expect(children![0]).toMatchObject({
        agentId: 'security',
        status: 'failed',
        error: { code: 'CALL_CYCLE' },
      });
    });

    it('a call of an unknown action or with input its schema refuses fails the parent at once', async () => {
      t.runtime.defineActions('engineer', {
        unknown: (_input, ctx) => ctx.call('engineer', 'no-such-action'),
        badInput: (_input, ctx) => ctx.call('engineer', 'wait', { ms: 'soon' }),
      });
      await expect(run(t, 'engineer', 'unknown')).resolves.toMatchObject({
        status: 'failed',
        error: { code: 'UNKNOWN_ACTION' },
      });
      await expect(run(t, 'engineer', 'badInput')).resolves.toMatchObject({
        status: 'failed',
        error: { code: 'BAD_INPUT' },
      });
      await vi.waitFor(async () =>
        expect((await t.runtime.listTasks({ first: 100 })).items.length).toBeGreaterThan(0),
      );
    });
  });
});
