/**
 * The LangGraph runtime behind the same API: health names it, an interrupted graph shows its
 * value on Task.waitingFor.value, the signalTask mutation resumes it, and Task.checkpoints lists
 * its checkpoints newest first (one batched read for a page of tasks).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Annotation, END, START, StateGraph, interrupt } from '@langchain/langgraph';
import { defineAction, z } from '../../src/sdk/index.js';
import { describeEachDatabase } from '../support/databases.js';
import { until } from '../support/until.js';
import { data, startTestServer, type TestServer } from '../server/harness.js';

const State = Annotation.Root({ draft: Annotation<string>(), decision: Annotation<unknown>() });
const approvalGraph = new StateGraph(State)
  .addNode('ask', (state) => ({ decision: interrupt({ approve: state.draft }) }))
  .addEdge(START, 'ask')
  .addEdge('ask', END)
  .compile();

const TASK = `query Task($id: ID!) {
  task(id: $id) {
    status
    result
    waitingFor { signals value }
    checkpoints(first: 10) { id parentId step source values createdAt }
  }
}`;

describeEachDatabase('LangGraph runtime over GraphQL', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind, { env: { CAS_RUNTIME: 'langgraph' } });
    await server.runtime.registerAgent(
      { id: 'editor', name: 'Editor', role: 'test' },
      {
        actions: { approval: defineAction({ input: z.object({ draft: z.string() }), graph: approvalGraph }) },
      },
    );
  });
  afterAll(() => server?.close());

  it('serves an interrupt, its resume and the checkpoints', async () => {
    expect(await data(server.url, '{ health { runtime } }')).toEqual({ health: { runtime: 'langgraph' } });
    const { executeTask } = await data<{ executeTask: { id: string } }>(
      server.url,
      'mutation Run($input: ExecuteTaskInput!) { executeTask(input: $input) { id } }',
      { input: { agentId: 'editor', action: 'approval', input: { draft: 'Launch post' } } },
    );
    type TaskData = {
      task: {
        status: string;
        result: unknown;
        waitingFor: { signals: string[]; value: unknown } | null;
        checkpoints: { id: string; parentId: string | null; step: number; source: string; values: unknown }[];
      };
    };
    const waiting = await until('the task to wait', async () => {
      const { task } = await data<TaskData>(server.url, TASK, { id: executeTask.id });
      return task.status === 'WAITING' ? task : undefined;
    });
    expect(waiting.waitingFor).toEqual({ signals: ['resume'], value: { approve: 'Launch post' } });

    await data(
      server.url,
      'mutation Resume($id: ID!) { signalTask(id: $id, name: "resume", payload: "ship it") { id } }',
      {
        id: executeTask.id,
      },
    );
    const done = await until('the task to finish', async () => {
      const { task } = await data<TaskData>(server.url, TASK, { id: executeTask.id });
      return task.status === 'SUCCEEDED' ? task : undefined;
    });
    expect(done.result).toEqual({ draft: 'Launch post', decision: 'ship it' });
    expect(done.waitingFor).toBeNull();
    const [newest, ...older] = done.checkpoints;
    expect(newest).toMatchObject({ source: 'loop', values: { draft: 'Launch post', decision: 'ship it' } });
    expect(newest!.parentId).toBe(older[0]!.id);
    expect(done.checkpoints.at(-1)).toMatchObject({ step: -1, source: 'input', parentId: null });
    const steps = done.checkpoints.map((checkpoint) => checkpoint.step);
    expect([...steps].sort((a, b) => b - a)).toEqual(steps);
  });
});
