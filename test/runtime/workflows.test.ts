/**
 * Multi-agent workflows: a diamond whose last step reads two upstream results, a map fanning out
 * to 100 tasks with the results in order, failure under fail_fast and continue, cancelling a run,
 * resuming its event stream from a cursor, and bad definitions refused with nothing written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/domains/event/event.js';
import { eventCursor } from '../../src/domains/event/event.js';
import type { WorkflowRun } from '../../src/domains/workflow/workflow.js';
import { TaskFailure } from '../../src/runtime/handlers.js';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { until } from '../support/until.js';

/** Polls until `check` holds; a generous deadline, not a margin. */

const runWhere = (t: TestRuntime, id: string, ok: (run: WorkflowRun) => boolean) =>
  until(`run ${id}`, async () => {
    const [run] = await t.runtime.getWorkflowRuns([id]);
    return run && ok(run) ? run : undefined;
  });
const finished = (t: TestRuntime, id: string) => runWhere(t, id, (run) => run.status !== 'running');

const stepsOf = async (t: TestRuntime, id: string) => {
  const [steps] = await t.runtime.getWorkflowSteps([id]);
  return Object.fromEntries(steps!.map((step) => [step.id, step]));
};

async function collect(stream: AsyncIterable<AgentEvent>): Promise<AgentEvent[]> {
  const events: AgentEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

const rowCounts = async (t: TestRuntime) => {
  const [row] = await t.db.query<Record<string, number>>(
    `select (select count(*)::int from cas_workflow_runs) as runs,
            (select count(*)::int from cas_workflow_steps) as steps,
            (select count(*)::int from cas_tasks) as tasks,
            (select last_seq::int from cas_event_sequence) as events`,
  );
  return row!;
};

describeEachDatabase('workflows', (kind) => {
  let t: TestRuntime;
  let releaseFailure!: () => void;
  const failRelease = new Promise<void>((resolve) => (releaseFailure = resolve));

  beforeAll(async () => {
    t = await openTestRuntime(kind, { CAS_WORKERS: '2', CAS_WORKER_CONCURRENCY: '4' });
    t.runtime.defineActions('planner', {
      echo: (input) => ({ echo: input }),
      double: (input) => (input as number) * 2,
      sum: (input) => (input as number[]).reduce((total, value) => total + value, 0),
      delegateLong: async (_input, ctx) => ({ child: await ctx.call('engineer', 'wait', { ms: 60_000 }) }),
    });
    t.runtime.defineActions('tester', {
      alwaysFails: () => {
        throw new TaskFailure('tester broke', 'BROKEN', true);
      },
      failsWhenReleased: async () => {
        await failRelease;
        throw new TaskFailure('tester broke', 'BROKEN', false);
      },
      failsOnceCalledTaskRuns: async () => {
        await until('a task called by another step to run', async () => {
          const [row] = await t.db.query<{ n: number }>(
            `select count(*)::int as n from cas_tasks where parent_id is not null and status = 'running'`,
          );
          return row!.n > 0 ? true : undefined;
        });
        throw new TaskFailure('tester broke', 'BROKEN', false);
      },
    });
  }, 120_000);
  afterAll(() => t?.close());

  it('runs a diamond: D gets B and C results through $ref', async () => {
    const run = await t.runtime.executeWorkflow({
      definition: {
        steps: [
          { id: 'A', agentId: 'planner', action: 'echo', input: { $ref: 'input.topic' } },
          { id: 'B', agentId: 'developer', action: 'ping', dependsOn: ['A'] },
          {
            id: 'C',
            agentId: 'planner',
            action: 'echo',
            input: { from: { $ref: 'A.result.echo' } },
            dependsOn: ['A'],
          },
          {
            id: 'D',
            agentId: 'planner',
            action: 'echo',
            input: {
              b: { $ref: 'B.result' },
              c: { $ref: 'C.result.echo.from' },
              list: [{ $ref: 'input.n' }],
            },
            dependsOn: ['B', 'C'],
          },
        ],
      },
      input: { topic: 'workflows', n: 7 },
    });
    expect(run.status).toBe('running');
    const done = await finished(t, run.id);
    expect(done.status).toBe('succeeded');
    expect(done.progress).toBe(1);
    expect(done.result).toEqual({ D: { echo: { b: { pong: true }, c: 'workflows', list: [7] } } });
    const steps = await stepsOf(t, run.id);
    expect(Object.values(steps).map((step) => step.status)).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
    // D's task was queued only after B and C finished: its task_queued comes after both completions.
    const events = (await t.runtime.getEventHistory({ first: 500 })).items;
    const seqOf = (type: string, taskId: string | null) =>
      events.find((event) => event.type === type && event.taskId === taskId)!.seq;
    const queuedD = seqOf('task_queued', steps.D!.taskId);
    expect(queuedD).toBeGreaterThan(seqOf('task_completed', steps.B!.taskId));
    expect(queuedD).toBeGreaterThan(seqOf('task_completed', steps.C!.taskId));
  });

  it('step tasks carry the trace context of the request that started the run', async () => {
    const traceParent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const [run] = await t.db.query<{ id: string }>(
      `select id from cas_start_workflow(p_definition => $1::jsonb, p_trace_parent => $2)`,
      [JSON.stringify({ steps: [{ id: 'only', agentId: 'marketer', action: 'ping' }] }), traceParent],
    );
    const tasks = await t.db.query<{ trace_parent: string | null }>(
      'select trace_parent from cas_tasks where workflow_run_id = $1',
      [run!.id],
    );
    expect(tasks).toEqual([{ trace_parent: traceParent }]);
  });

  it('maps over 100 items and yields the results in item order', async () => {
    const items = Array.from({ length: 100 }, (_, index) => index);
    const run = await t.runtime.executeWorkflow({
      definition: {
        steps: [
          {
            id: 'doubled',
            agentId: 'planner',
            action: 'double',
            map: 'input.items',
            input: { $ref: 'item' },
          },
          {
            id: 'total',
            agentId: 'planner',
            action: 'sum',
            input: { $ref: 'doubled.result' },
            dependsOn: ['doubled'],
          },
        ],
      },
      input: { items },
    });
    const done = await finished(t, run.id);
    expect(done.status).toBe('succeeded');
    const steps = await stepsOf(t, run.id);
    expect(steps.doubled!.result).toEqual(items.map((value) => value * 2));
    expect(steps.doubled!.itemsTotal).toBe(100);
    expect(done.result).toEqual({ total: 9900 });
  });

  it("a map item's input resolves both the item and the run's input", async () => {
    const run = await t.runtime.executeWorkflow({
      definition: {
        steps: [
          {
            id: 'tagged',
            agentId: 'planner',
            action: 'echo',
            map: 'input.items',
            input: { item: { $ref: 'item' }, tag: { $ref: 'input.tag' }, first: { $ref: 'input.items.0' } },
          },
        ],
      },
      input: { items: ['a', 'b', 'c'], tag: 't' },
    });
    expect((await finished(t, run.id)).status).toBe('succeeded');
    expect((await stepsOf(t, run.id)).tagged!.result).toEqual(
      ['a', 'b', 'c'].map((item) => ({ echo: { item, tag: 't', first: 'a' } })),
    );
  });

  it('a map step queues its items in one append; a batch ends its items in one write, with its claim', async () => {
    // Both workers' slots (2 x 4) hold an item until eight run; released together, each worker
    // completes its items in one batch, which claims the four items left.
    const items = Array.from({ length: 12 }, (_, index) => index);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    t.runtime.defineActions('analyst', {
      heldItem: async (input) => {
        await released;
        return input;
      },
    });
    const run = await t.runtime.executeWorkflow({
      definition: {
        steps: [
          { id: 'held', agentId: 'analyst', action: 'heldItem', map: 'input.items', input: { $ref: 'item' } },
        ],
      },
      input: { items },
    });
    await until('eight items running', async () => {
      const [row] = await t.db.query<{ n: number }>(
        `select count(*)::int as n from cas_tasks where workflow_run_id = $1 and status = 'running'`,
        [run.id],
      );
      return row!.n === 8 ? true : undefined;
    });
    release();
    const done = await finished(t, run.id);
    expect(done.status).toBe('succeeded');
    expect((await stepsOf(t, run.id)).held!.result).toEqual(items);
    // Rows written by one statement share their transaction (xmin) and command (cmin).
    const [writes] = await t.db.query<{
      queued: number;
      queuedItems: number[];
      ended: number;
      endedWithClaims: number;
    }>(
      `with events as (
         select e.event_type, e.seq, t.workflow_item, e.xmin::text || ':' || e.cmin::text as statement
         from cas_agent_events e join cas_tasks t on t.id = e.task_id
         where t.workflow_run_id = $1)
       select (select count(distinct statement)::int from events where event_type = 'task_queued') as queued,
              (select array_agg(workflow_item order by seq) from events where event_type = 'task_queued') as "queuedItems",
              (select count(distinct statement)::int from events where event_type = 'task_completed') as ended,
              (select count(distinct statement)::int from events where event_type = 'task_completed'
                 and statement in (select statement from events where event_type = 'task_started')) as "endedWithClaims"`,
      [run.id],
    );
    expect(writes).toMatchObject({ queued: 1, queuedItems: items });
    expect(writes!.ended).toBeLessThan(items.length);
    expect(writes!.endedWithClaims).toBeGreaterThan(0);
  });

  it('fail_fast: a step failing after its retries cancels the running task and fails the run', async () => {
    const run = await t.runtime.executeWorkflow({
      definition: {
        steps: [
          { id: 'slow', agentId: 'qa', action: 'wait', input: { ms: 60_000 } },
          { id: 'broken', agentId: 'tester', action: 'alwaysFails', maxAttempts: 2 },
          { id: 'after', agentId: 'planner', action: 'echo', dependsOn: ['broken'] },
        ],
      },
    });
    const done = await finished(t, run.id).catch(async (error: unknown) => {
      console.error(
        await stepsOf(t, run.id),
        await t.db.query(
          'select id, workflow_step_id, status, attempts, run_at, error from cas_tasks where workflow_run_id = $1',
          [run.id],
        ),
      );
      throw error;
    });
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ stepId: 'broken', code: 'BROKEN' });
    const steps = await stepsOf(t, run.id);
    expect(steps.broken!.status).toBe('failed');
    expect(steps.slow!.status).toBe('cancelled');
    expect(steps.after!.status).toBe('cancelled');
    const [broken] = await t.runtime.getTasks([steps.broken!.taskId!]);
    expect(broken!.attempts).toBe(2);
    const slowTask = await until('slow task cancelled', async () => {
      const [task] = await t.runtime.getTasks([steps.slow!.taskId!]);
      return task?.status === 'cancelled' ? task : undefined;
    }).catch(async (error: unknown) => {
      // What the running step's task went through, to tell a lost cancel from a lost outcome.
      const [task] = await t.runtime.getTasks([steps.slow!.taskId!]);
      const events = await t.runtime.getEventHistory({ taskId: steps.slow!.taskId!, first: 100 });
      console.error(
        task,
        events.items.map((event) => [event.type, event.createdAt]),
      );
      throw error;
    });
    expect(slowTask.status).toBe('cancelled');
  }, 120_000);

  // A row lock held by another transaction (a heartbeat, a progress write) when fail_fast cancels the
  // run's tasks makes the hand-off pass that task over (SKIP LOCKED); the workers' sweep ends it.
  it.skipIf(kind !== 'postgres')(
    'fail_fast: a running task passed over because its row was locked is cancelled by the sweep',
    async () => {
      const run = await t.runtime.executeWorkflow({
        definition: {
          steps: [
            { id: 'slow', agentId: 'qa', action: 'wait', input: { ms: 120_000 } },
            { id: 'broken', agentId: 'tester', action: 'failsWhenReleased' },
          ],
        },
      });
      const slowId = await until('slow step running', async () => {
        const steps = await stepsOf(t, run.id);
        const [task] = steps.slow?.taskId ? await t.runtime.getTasks([steps.slow.taskId]) : [];
        return task?.status === 'running' ? task.id : undefined;
      });
      await t.db.transaction(async (tx) => {
        await tx.query('select id from cas_tasks where id = $1 for update', [slowId]);
        releaseFailure();
        await finished(t, run.id);
        const [held] = await t.runtime.getTasks([slowId]);
        // Passed over: the hand-off could not take its row.
        expect(held).toMatchObject({ status: 'running', cancelRequestedAt: null });
      });
      const slow = await until('slow task cancelled by the sweep', async () => {
        const [task] = await t.runtime.getTasks([slowId]);
        return task?.status === 'cancelled' ? task : undefined;
      });
      expect(slow.status).toBe('cancelled');
      const events = await t.runtime.getEventHistory({ taskId: slowId, first: 100 });
      expect(events.items.find((event) => event.type === 'task_cancel_requested')?.payload).toMatchObject({
        reason: 'workflow_failed',
      });
    },
    150_000,
  );

  it('continue: the independent branch completes, dependents are skipped, the run fails', async () => {
    const run = await t.runtime.executeWorkflow({
      definition: {
        steps: [
          { id: 'broken', agentId: 'tester', action: 'alwaysFails', maxAttempts: 2 },
          { id: 'child', agentId: 'planner', action: 'echo', dependsOn: ['broken'] },
          { id: 'grandchild', agentId: 'planner', action: 'echo', dependsOn: ['child'] },
          { id: 'other', agentId: 'qa', action: 'wait', input: { ms: 50 } },
          {
            id: 'otherNext',
            agentId: 'planner',
            action: 'echo',
            input: { $ref: 'other.result' },
            dependsOn: ['other'],
          },
        ],
      },
      failPolicy: 'continue',
    });
    const done = await finished(t, run.id);
    expect(done.status).toBe('failed');
    expect(done.progress).toBe(1);
    const steps = await stepsOf(t, run.id);
    expect(steps.broken!.status).toBe('failed');
    expect(steps.child!.status).toBe('skipped');
    expect(steps.grandchild!.status).toBe('skipped');
    expect(steps.other!.status).toBe('succeeded');
    expect(steps.otherNext!.status).toBe('succeeded');
    expect(done.result).toEqual({ otherNext: { echo: { waitedMs: 50, steps: 0 } } });
  });

  it('cancels a run mid-way: running task stopped, pending steps cancelled; cancelling again is a no-op', async () => {
    const run = await t.runtime.executeWorkflow({
      definition: {
        steps: [
          { id: 'long', agentId: 'qa', action: 'wait', input: { ms: 60_000 } },
          { id: 'next', agentId: 'planner', action: 'echo', dependsOn: ['long'] },
        ],
      },
    });
    const steps = await stepsOf(t, run.id);
    await until('long running', async () => {
      const [task] = await t.runtime.getTasks([steps.long!.taskId!]);
      return task?.status === 'running' ? task : undefined;
    });
    const cancelled = await t.runtime.cancelWorkflowRun(run.id);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.progress).toBe(1);
    const after = await stepsOf(t, run.id);
    expect(after.long!.status).toBe('cancelled');
    expect(after.next!.status).toBe('cancelled');
    await until('long task cancelled', async () => {
      const [task] = await t.runtime.getTasks([steps.long!.taskId!]);
      return task?.status === 'cancelled' ? task : undefined;
    });
    const again = await t.runtime.cancelWorkflowRun(run.id);
    expect(again.status).toBe('cancelled');
    const events = await collect(t.runtime.streamWorkflow(run.id));
    expect(events.filter((event) => event.type === 'workflow_cancelled')).toHaveLength(1);
  });

  it('cancelling a run cancels the tasks its step tasks called (ctx.call), at any depth', async () => {
    const run = await t.runtime.executeWorkflow({
      definition: { steps: [{ id: 'delegating', agentId: 'planner', action: 'delegateLong' }] },
    });
    const steps = await stepsOf(t, run.id);
    const stepTaskId = steps.delegating!.taskId!;
    const child = await until('the called task to run', async () => {
      const [row] = await t.db.query<{ id: string; status: string }>(
        `select id, status from cas_tasks where parent_id = $1`,
        [stepTaskId],
      );
      return row?.status === 'running' ? row : undefined;
    });
    const cancelled = await t.runtime.cancelWorkflowRun(run.id);
    expect(cancelled.status).toBe('cancelled');
    const [childAfter] = await until('the called task cancelled', async () => {
      const tasks = await t.runtime.getTasks([child.id, stepTaskId]);
      return tasks.every((task) => task?.status === 'cancelled') ? tasks : undefined;
    });
    const childEvents = (await t.runtime.getEventHistory({ taskId: childAfter!.id, first: 100 })).items;
    expect(childEvents.find((event) => event.type === 'task_cancel_requested')?.payload).toMatchObject({
      reason: 'parent_cancelled',
    });
  });

  it('fail_fast: the tasks a cancelled step task had called are cancelled too (the workers sweep)', async () => {
    const run = await t.runtime.executeWorkflow({
      definition: {
        steps: [
          { id: 'delegating', agentId: 'planner', action: 'delegateLong' },
          { id: 'broken', agentId: 'tester', action: 'failsOnceCalledTaskRuns' },
        ],
      },
    });
    const done = await finished(t, run.id);
    expect(done.status).toBe('failed');
    const steps = await stepsOf(t, run.id);
    const [child] = await t.db.query<{ id: string }>(`select id from cas_tasks where parent_id = $1`, [
      steps.delegating!.taskId!,
    ]);
    await until('the called task cancelled', async () => {
      const [task] = await t.runtime.getTasks([child!.id]);
      return task?.status === 'cancelled' ? task : undefined;
    });
    const events = (await t.runtime.getEventHistory({ taskId: child!.id, first: 100 })).items;
    expect(events.find((event) => event.type === 'task_cancel_requested')?.payload).toMatchObject({
      reason: 'parent_cancelled',
    });
  });

  it('cancelling a map while its items finish concurrently ends every task, without deadlocks', async () => {
    const run = await t.runtime.executeWorkflow({
      definition: {
        steps: [
          {
            id: 'many',
            agentId: 'analyst',
            action: 'wait',
            map: 'input.items',
            input: { ms: { $ref: 'item' } },
          },
          { id: 'after', agentId: 'planner', action: 'echo', dependsOn: ['many'] },
        ],
      },
      input: { items: Array.from({ length: 200 }, () => 5) },
    });
    await until('some items done', async () => {
      const steps = await stepsOf(t, run.id);
      return steps.many!.itemsDone >= 10 ? true : undefined;
    });
    const cancelled = await t.runtime.cancelWorkflowRun(run.id);
    expect(cancelled.status).toBe('cancelled');
    const [row] = await until('every task final', async () => {
      const rows = await t.db.query<{ open: number }>(
        `select count(*)::int as open from cas_tasks
         where workflow_run_id = $1 and status not in ('succeeded', 'failed', 'cancelled')`,
        [run.id],
      );
      return rows[0]!.open === 0 ? rows : undefined;
    });
    expect(row!.open).toBe(0);
    const steps = await stepsOf(t, run.id);
    expect(steps.many!.status).toBe('cancelled');
    expect(steps.after!.status).toBe('cancelled');
    const [final] = await t.runtime.getWorkflowRuns([run.id]);
    expect(final!.status).toBe('cancelled');
  }, 120_000);

  it('workflowRunEvents resumed from a cursor has no gaps or duplicates', async () => {
    const run = await t.runtime.executeWorkflow({
      definition: {
        steps: [
          { id: 'one', agentId: 'planner', action: 'ping' },
          { id: 'two', agentId: 'developer', action: 'ping', dependsOn: ['one'] },
          { id: 'three', agentId: 'tester', action: 'ping', dependsOn: ['two'] },
        ],
      },
    });
    const firstPart: AgentEvent[] = [];
    for await (const event of t.runtime.streamWorkflow(run.id)) {
      firstPart.push(event);
      if (firstPart.length === 3) break;
    }
    const rest = await collect(t.runtime.streamWorkflow(run.id, { after: eventCursor(firstPart.at(-1)!) }));
    const all = [...firstPart, ...rest];
    const whole = await collect(t.runtime.streamWorkflow(run.id));
    expect(all.map((event) => event.seq)).toEqual(whole.map((event) => event.seq));
    expect(new Set(all.map((event) => event.seq)).size).toBe(all.length);
    expect(whole.map((event) => event.type)).toEqual([
      'workflow_started',
      'workflow_step_started',
      'workflow_step_succeeded',
      'workflow_step_started',
      'workflow_step_succeeded',
      'workflow_step_started',
      'workflow_step_succeeded',
      'workflow_succeeded',
    ]);
    expect(whole.every((event) => event.workflowRunId === run.id)).toBe(true);
    const updates: WorkflowRun[] = [];
    for await (const snapshot of t.runtime.watchWorkflowRun(run.id)) updates.push(snapshot);
    expect(updates.at(-1)!.status).toBe('succeeded');
  });

  describe('a worker whose poll comes only after the test gives up', () => {
    let slow: TestRuntime;
    beforeAll(async () => {
      slow = await openTestRuntime(kind, {
        CAS_WORKERS: '1',
        CAS_WORKER_CONCURRENCY: '2',
        CAS_WORKER_POLL_MS: '60000',
      });
    }, 120_000);
    afterAll(() => slow?.close());

    // Each step is queued by the completion batch of the one before it, whose claim picked before
    // that and held every free slot while the step's task_queued rang: the worker must look again
    // once that batch is back, not at its next poll.
    it('starts each step of a chain as soon as the one before it ends', async () => {
      const run = await slow.runtime.executeWorkflow({
        definition: {
          steps: ['a', 'b', 'c', 'd'].map((id, index, ids) => ({
            id,
            agentId: 'planner',
            action: 'ping',
            ...(index > 0 ? { dependsOn: [ids[index - 1]!] } : {}),
          })),
        },
      });
      const done = await until(
        'the chain to finish',
        async () => {
          const [current] = await slow.runtime.getWorkflowRuns([run.id]);
          return current?.status === 'running' ? undefined : current;
        },
        20_000,
      );
      expect(done?.status).toBe('succeeded');
    });
  });

  describe('a task cancelled while queued (no worker ran it)', () => {
    let idle: TestRuntime;
    beforeAll(async () => {
      idle = await openTestRuntime(kind, { CAS_WORKERS: '0' });
    }, 120_000);
    afterAll(() => idle?.close());

    it('fails its step at the next sweep, and the run with it', async () => {
      const run = await idle.runtime.executeWorkflow({
        definition: {
          steps: [
            { id: 'first', agentId: 'planner', action: 'ping' },
            { id: 'second', agentId: 'qa', action: 'ping', dependsOn: ['first'] },
          ],
        },
      });
      const steps = await stepsOf(idle, run.id);
      await idle.runtime.cancelTask(steps.first!.taskId!);
      expect((await idle.runtime.getWorkflowRuns([run.id]))[0]!.status).toBe('running');
      // What a worker's lease sweep runs (none runs in this runtime).
      const [swept] = await idle.db.query<{ n: number }>('select cas_settle_ended_workflow_tasks(100) as n');
      expect(swept!.n).toBe(1);
      const [after] = await idle.runtime.getWorkflowRuns([run.id]);
      expect(after).toMatchObject({ status: 'failed', error: { stepId: 'first', code: 'CANCELLED' } });
      const final = await stepsOf(idle, run.id);
      expect([final.first!.status, final.second!.status]).toEqual(['failed', 'cancelled']);
      const [again] = await idle.db.query<{ n: number }>('select cas_settle_ended_workflow_tasks(100) as n');
      expect(again!.n).toBe(0);
    });
  });

  describe('bad definitions are refused with BAD_USER_INPUT and nothing written', () => {
    const cases: [string, unknown, string | null][] = [
      ['no steps', { steps: [] }, null],
      ['not an object', 'steps', null],
      ['unknown agent', { steps: [{ id: 'a', agentId: 'nobody', action: 'ping' }] }, 'a'],
      ['unknown action', { steps: [{ id: 'a', agentId: 'planner', action: 'nope' }] }, 'a'],
      [
        'duplicate id',
        {
          steps: [
            { id: 'a', agentId: 'planner', action: 'ping' },
            { id: 'a', agentId: 'qa', action: 'ping' },
          ],
        },
        'a',
      ],
      [
        'cycle',
        {
          steps: [
            { id: 'a', agentId: 'planner', action: 'ping', dependsOn: ['b'] },
            { id: 'b', agentId: 'planner', action: 'ping', dependsOn: ['a'] },
          ],
        },
        'a',
      ],
      [
        '$ref to a step that is not upstream',
        {
          steps: [
            { id: 'a', agentId: 'planner', action: 'ping' },
            { id: 'b', agentId: 'planner', action: 'echo', input: { $ref: 'a.result' } },
          ],
        },
        'b',
      ],
      [
        '$ref to an unknown root',
        { steps: [{ id: 'a', agentId: 'planner', action: 'echo', input: { x: { $ref: 'ghost.result' } } }] },
        'a',
      ],
      [
        'item outside a map',
        { steps: [{ id: 'a', agentId: 'planner', action: 'echo', input: { $ref: 'item' } }] },
        'a',
      ],
      [
        'unknown dependency',
        { steps: [{ id: 'a', agentId: 'planner', action: 'ping', dependsOn: ['z'] }] },
        'a',
      ],
    ];
    it.each(cases)('%s', async (_name, definition, stepId) => {
      const before = await rowCounts(t);
      const refusal = t.runtime.executeWorkflow({ definition });
      await expect(refusal).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
      if (stepId) await expect(refusal).rejects.toMatchObject({ details: { stepId } });
      expect(await rowCounts(t)).toEqual(before);
    });
  });
});
