/**
 * What only the LangGraph runtime does (the conformance suites run on both runtimes; see
 * vitest.config.ts): graph actions with a conditional edge, node events, progress from the custom
 * stream, model tokens from the messages stream, interrupt() answered by signalTask "resume", a
 * retry that resumes from the last checkpoint without running finished nodes again, and
 * Task.checkpoints.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDefinition } from '../../src/agents/definition.js';
import {
  Annotation,
  END,
  START,
  StateGraph,
  interrupt,
  type LangGraphRunnableConfig,
} from '@langchain/langgraph';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { defineAction, defineAgent, taskContext, z, type TaskContext } from '../../src/sdk/index.js';
import type { Task } from '../../src/domains/task/task.js';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { until } from '../support/until.js';

const final = (task: Task) => ['succeeded', 'failed', 'cancelled'].includes(task.status);

const taskWhere = (t: TestRuntime, id: string, ok: (task: Task) => boolean) =>
  until(`task ${id}`, async () => {
    const [task] = await t.runtime.getTasks([id]);
    return task && ok(task) ? task : undefined;
  });

const eventsOf = async (t: TestRuntime, taskId: string) =>
  (await t.runtime.getEventHistory({ taskId, first: 500 })).items;

const Review = Annotation.Root({
  text: Annotation<string>(),
  verdict: Annotation<string>(),
  trail: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
});

/** A two-node graph with a conditional edge: short texts are approved, long ones rejected. */
const reviewGraph = new StateGraph(Review)
  .addNode('measure', (state, config: LangGraphRunnableConfig) => {
    config.writer?.({ progress: 0.5, message: 'measured' });
    return { trail: [`measure:${state.text.length}`] };
  })
  .addNode('approve', () => ({ verdict: 'approved', trail: ['approve'] }))
  .addNode('reject', () => ({ verdict: 'rejected', trail: ['reject'] }))
  .addEdge(START, 'measure')
  .addConditionalEdges('measure', (state) => (state.text.length <= 10 ? 'approve' : 'reject'), [
    'approve',
    'reject',
  ])
  .addEdge('approve', END)
  .addEdge('reject', END)
  .compile();

const Approval = Annotation.Root({
  draft: Annotation<string>(),
  decision: Annotation<unknown>(),
});

/** Asks a person (interrupt) before it publishes. */
const approvalGraph = new StateGraph(Approval)
  .addNode('ask', (state) => ({ decision: interrupt({ question: 'publish?', draft: state.draft }) }))
  .addEdge(START, 'ask')
  .addEdge('ask', END)
  .compile();

describeEachDatabase('LangGraph runtime', (kind) => {
  let t: TestRuntime;
  /** How often each node of the crash graph ran, over all attempts. */
  const runs = new Map<string, number>();
  const ran = (node: string) => runs.set(node, (runs.get(node) ?? 0) + 1);

  const Crash = Annotation.Root({ n: Annotation<number>() });
  const crashGraph = new StateGraph(Crash)
    .addNode('first', (state) => {
      ran('first');
      return { n: state.n + 1 };
    })
    .addNode('second', (state, config: LangGraphRunnableConfig) => {
      ran('second');
      if (taskContext(config).attempt === 1) throw new Error('crash in the second node');
      return { n: state.n * 10 };
    })
    .addEdge(START, 'first')
    .addEdge('first', 'second')
    .addEdge('second', END)
    .compile();

  /** The supersteps of the checkpoints stored when the second node of the stored graph started. */
  let storedBeforeSecond: Array<number | null> = [];
  const Stored = Annotation.Root({ n: Annotation<number>() });
  const storedGraph = new StateGraph(Stored)
    .addNode('first', (state) => ({ n: state.n + 1 }))
    .addNode('second', async (state, config: LangGraphRunnableConfig) => {
      const [checkpoints] = await t.runtime.getTaskCheckpoints([taskContext(config).taskId], 10);
      storedBeforeSecond = checkpoints!.map((checkpoint) => checkpoint.step);
      return { n: state.n * 10 };
    })
    .addEdge(START, 'first')
    .addEdge('first', 'second')
    .addEdge('second', END)
    .compile();

  const Chat = Annotation.Root({ prompt: Annotation<string>(), answer: Annotation<string>() });
  const chatGraph = new StateGraph(Chat)
    .addNode('reply', async (state) => {
      const model = new FakeListChatModel({ responses: [`echo: ${state.prompt}`] });
      let answer = '';
      for await (const chunk of await model.stream(state.prompt)) answer += String(chunk.content);
      return { answer };
    })
    .addEdge(START, 'reply')
    .addEdge('reply', END)
    .compile();

  /** A node that runs until its task's signal aborts it (cancelTask). */
  const Hold = Annotation.Root({ held: Annotation<boolean>() });
  const holdGraph = new StateGraph(Hold)
    .addNode('hold', async (_state, config: LangGraphRunnableConfig) => {
      const { signal } = taskContext(config);
      await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      return { held: true };
    })
    .addEdge(START, 'hold')
    .addEdge('hold', END)
    .compile();

  beforeAll(async () => {
    t = await openTestRuntime(kind, { CAS_RUNTIME: 'langgraph' });
    await t.runtime.registerAgent(
      { id: 'graphs', name: 'Graphs', role: 'test' },
      {
        actions: {
          review: defineAction({
            input: z.object({ text: z.string() }),
            output: z.object({ verdict: z.string(), trail: z.array(z.string()) }),
            graph: reviewGraph,
          }),
          approval: defineAction({ input: z.object({ draft: z.string() }), graph: approvalGraph }),
          crash: defineAction({ input: z.object({ n: z.number() }), graph: crashGraph }),
          stored: defineAction({ input: z.object({ n: z.number() }), graph: storedGraph }),
          chat: defineAction({ input: z.object({ prompt: z.string() }), graph: chatGraph }),
          hold: defineAction({ input: z.object({}), graph: holdGraph }),
          plain: (input: unknown) => ({ plain: input }),
          fireAndForget: (_input: unknown, ctx: TaskContext) => {
            void ctx.call('graphs', 'plain', 'unawaited');
            return 'returned at once';
          },
        },
      },
    );
  });
  afterAll(() => t?.close());

  it('reports its name in health', async () => {
    expect((await t.runtime.healthCheck()).runtime).toBe('langgraph');
  });

  it('runs a two-node graph with a conditional edge, node events in order and progress from the custom stream', async () => {
    const short = await t.runtime.executeTask({
      agentId: 'graphs',
      action: 'review',
      input: { text: 'short' },
      wait: true,
    });
    const long = await t.runtime.executeTask({
      agentId: 'graphs',
      action: 'review',
      input: { text: 'a much longer text' },
      wait: true,
    });
    expect(short.status).toBe('succeeded');
    expect(short.result).toEqual({ verdict: 'approved', trail: ['measure:5', 'approve'] });
    expect(long.result).toEqual({ verdict: 'rejected', trail: ['measure:18', 'reject'] });

    const events = await eventsOf(t, short.id);
    const steps = events
      .filter((event) => event.type.startsWith('step_'))
      .map((event) => `${event.type}:${String(event.payload.step)}`);
    expect(steps).toEqual([
      'step_started:node:measure',
      'step_completed:node:measure',
      'step_started:node:approve',
      'step_completed:node:approve',
    ]);
    // Progress writes are coalesced, so only that it landed is certain, not where among the steps.
    expect(events.filter((event) => event.type === 'task_progress').map((event) => event.payload)).toEqual([
      expect.objectContaining({ progress: 0.5, message: 'measured' }),
    ]);
  });

  it('runs a plain action as a one-node graph, checkpointed once at its exit, with no node events of its own', async () => {
    const task = await t.runtime.executeTask({
      agentId: 'graphs',
      action: 'plain',
      input: { a: 1 },
      wait: true,
    });
    expect(task.status).toBe('succeeded');
    expect(task.result).toEqual({ plain: { a: 1 } });
    expect((await eventsOf(t, task.id)).map((event) => event.type)).toEqual([
      'task_queued',
      'task_started',
      'task_completed',
    ]);
    // One checkpoint, stored as the graph exits (durability "exit"): a one-node graph has no
    // finished step to keep before then, so its input and first-step checkpoints are not written.
    const [checkpoints] = await t.runtime.getTaskCheckpoints([task.id], 10);
    expect(checkpoints).toHaveLength(1);
    expect(checkpoints![0]).toMatchObject({
      source: 'loop',
      values: { input: { a: 1 }, result: { plain: { a: 1 } } },
    });
  });

  // A worker killed in a node must find every finished node's checkpoint when its task resumes.
  it("stores each step's checkpoint before the next node starts", async () => {
    const task = await t.runtime.executeTask({
      agentId: 'graphs',
      action: 'stored',
      input: { n: 1 },
      wait: true,
    });
    expect(task.result).toEqual({ n: 20 });
    // The input's checkpoint (-1), the first step's (0) and the one with the first node's writes
    // (1), from which a resumed attempt would start at the second node.
    expect(storedBeforeSecond).toEqual([1, 0, -1]);
  });

  it("streams a chat model's tokens (messages stream) into the task output", async () => {
    const task = await t.runtime.executeTask({
      agentId: 'graphs',
      action: 'chat',
      input: { prompt: 'hi' },
      wait: true,
    });
    expect(task.status).toBe('succeeded');
    expect(task.result).toMatchObject({ answer: 'echo: hi' });
    const [stored] = await t.runtime.getTasks([task.id]);
    expect(stored!.output).toBe('echo: hi');
    const deltas = (await eventsOf(t, task.id)).filter((event) => event.type === 'task_output');
    expect(deltas.length).toBeGreaterThan(0);
  });

  it('waits at interrupt() with its value on waitingFor, and resumes with signalTask "resume"', async () => {
    const queued = await t.runtime.executeTask({
      agentId: 'graphs',
      action: 'approval',
      input: { draft: 'Hello' },
    });
    const waiting = await taskWhere(t, queued.id, (task) => task.status === 'waiting');
    expect(waiting.waitingFor?.signals).toEqual(['resume']);
    expect(waiting.waitingFor?.value).toEqual({ question: 'publish?', draft: 'Hello' });

    await t.runtime.signalTask(queued.id, 'resume', { approved: true });
    const done = await taskWhere(t, queued.id, final);
    expect(done.status).toBe('succeeded');
    expect(done.result).toEqual({ draft: 'Hello', decision: { approved: true } });
  });

  it('cancelTask aborts a running node: the task ends CANCELLED and the node is not recorded as failed', async () => {
    const task = await t.runtime.executeTask({ agentId: 'graphs', action: 'hold', input: {} });
    await until('the node started', async () =>
      (await eventsOf(t, task.id)).some((event) => event.type === 'step_started') ? true : undefined,
    );
    await t.runtime.cancelTask(task.id);
    const done = await taskWhere(t, task.id, final);
    expect(done.status).toBe('cancelled');
    expect((await eventsOf(t, task.id)).map((event) => event.type)).not.toContain('step_failed');
  });

  it('refuses a resume for a finished graph (CONFLICT) and a bad resume leaves it waiting', async () => {
    const queued = await t.runtime.executeTask({
      agentId: 'graphs',
      action: 'approval',
      input: { draft: 'Hi' },
    });
    await taskWhere(t, queued.id, (task) => task.status === 'waiting');
    // Another signal name is kept for a wait that never comes: the task stays waiting.
    await t.runtime.signalTask(queued.id, 'approve', true);
    expect((await t.runtime.getTasks([queued.id]))[0]!.status).toBe('waiting');
    await t.runtime.signalTask(queued.id, 'resume', 'yes');
    const done = await taskWhere(t, queued.id, final);
    expect(done.result).toEqual({ draft: 'Hi', decision: 'yes' });
    await expect(t.runtime.signalTask(queued.id, 'resume', 'again')).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('a handler that leaves a call unawaited keeps its result, whenever the attempt is suspended', async () => {
    // The unawaited call may suspend the attempt after the node returned but before the next
    // checkpoint was stored: the next attempt must apply the stored writes, not end with none.
    for (let run = 0; run < 10; run += 1) {
      const task = await t.runtime.executeTask({
        agentId: 'graphs',
        action: 'fireAndForget',
        input: { run },
        wait: true,
      });
      expect(task).toMatchObject({ status: 'succeeded', result: 'returned at once' });
    }
  });

  it('retries from the last checkpoint: a finished node does not run again', async () => {
    const task = await t.runtime.executeTask({
      agentId: 'graphs',
      action: 'crash',
      input: { n: 1 },
      maxAttempts: 2,
      retryDelayMs: 0,
    });
    const done = await taskWhere(t, task.id, final);
    expect(done.status).toBe('succeeded');
    expect(done.attempts).toBe(2);
    expect(done.result).toEqual({ n: 20 });
    expect(Object.fromEntries(runs)).toEqual({ first: 1, second: 2 });
    const types = (await eventsOf(t, task.id))
      .filter((event) => event.type.startsWith('step_'))
      .map((event) => `${event.type}:${String(event.payload.step)}:${String(event.payload.attempt)}`);
    expect(types).toEqual([
      'step_started:node:first:1',
      'step_completed:node:first:1',
      'step_started:node:second:1',
      'step_failed:node:second:1',
      'step_started:node:second:2',
      'step_completed:node:second:2',
    ]);
  });
});

describeEachDatabase('graph actions in the custom runtime', (kind) => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await openTestRuntime(kind, { CAS_RUNTIME: 'custom' });
    await t.runtime.registerAgent(
      { id: 'graphs', name: 'Graphs', role: 'test' },
      {
        actions: {
          review: defineAction({ input: z.object({ text: z.string() }), graph: reviewGraph }),
          approval: defineAction({ input: z.object({ draft: z.string() }), graph: approvalGraph }),
          approve: defineAction({
            input: z.object({ draft: z.string() }),
            run: async ({ draft }, ctx) => ({
              answer: await ctx.waitForSignal('approve', { value: { question: 'publish?', draft } }),
            }),
          }),
        },
      },
    );
  });
  afterAll(() => t?.close());

  it('runs a graph action, checkpointed, with its node events', async () => {
    expect((await t.runtime.healthCheck()).runtime).toBe('custom');
    const task = await t.runtime.executeTask({
      agentId: 'graphs',
      action: 'review',
      input: { text: 'ok' },
      wait: true,
    });
    expect(task.result).toMatchObject({ verdict: 'approved', trail: ['measure:2', 'approve'] });
    expect((await eventsOf(t, task.id)).filter((event) => event.type === 'step_completed')).toHaveLength(2);
    expect((await t.runtime.getTaskCheckpoints([task.id], 100))[0]!.length).toBeGreaterThan(2);
  });

  it('waits at interrupt() and resumes with signalTask "resume", as in the LangGraph runtime', async () => {
    const queued = await t.runtime.executeTask({
      agentId: 'graphs',
      action: 'approval',
      input: { draft: 'D' },
    });
    const waiting = await taskWhere(t, queued.id, (task) => task.status === 'waiting');
    expect(waiting.waitingFor?.value).toEqual({ question: 'publish?', draft: 'D' });
    await t.runtime.signalTask(queued.id, 'resume', 'ok');
    expect((await taskWhere(t, queued.id, final)).result).toEqual({ draft: 'D', decision: 'ok' });
  });

  it("shows waitForSignal's value on waitingFor; a plain action has no checkpoints", async () => {
    const queued = await t.runtime.executeTask({
      agentId: 'graphs',
      action: 'approve',
      input: { draft: 'E' },
    });
    const waiting = await taskWhere(t, queued.id, (task) => task.status === 'waiting');
    expect(waiting.waitingFor).toMatchObject({
      signals: ['approve'],
      value: { question: 'publish?', draft: 'E' },
    });
    await t.runtime.signalTask(queued.id, 'approve', { yes: true });
    expect((await taskWhere(t, queued.id, final)).result).toEqual({ answer: { yes: true } });
    expect(await t.runtime.getTaskCheckpoints([queued.id], 10)).toEqual([[]]);
  });
});

describe('graph action definitions', () => {
  const agent = (action: unknown) =>
    checkDefinition(defineAgent({ id: 'g', name: 'G', role: 'test', actions: { a: action as never } }));

  it('refuses a graph that is not compiled, and a definition with both run and graph, one line each', () => {
    expect(agent({ input: z.object({}), graph: new StateGraph(Review) })).toEqual({
      ok: false,
      problems: ['actions.a.graph: must be a compiled LangGraph graph, e.g. new StateGraph(...).compile()'],
    });
    expect(agent({ input: z.object({}), graph: reviewGraph, run: () => null })).toEqual({
      ok: false,
      problems: ['actions.a: Unrecognized key: "run"'],
    });
    expect(agent({ input: z.object({ text: z.string() }), graph: reviewGraph })).toMatchObject({ ok: true });
  });
});
