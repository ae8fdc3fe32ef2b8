/**
 * Workflows as a GraphQL client sees them (docs/workflows.md): the three-agent example run from
 * executeWorkflow with the definition as a variable, each step live on workflowRunEvents over
 * graphql-ws (resumed from a cursor without gaps or repeats), and a bad definition refused with
 * extensions.code BAD_USER_INPUT naming the step, nothing written.
 */
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { describeEachDatabase } from '../support/databases.js';
import { data, gql, startTestServer, type AnyData, type TestServer } from './harness.js';

const EXECUTE = /* GraphQL */ `
  mutation Run($definition: JSON!, $input: JSON, $failPolicy: WorkflowFailPolicy) {
    executeWorkflow(input: { definition: $definition, input: $input, failPolicy: $failPolicy }) {
      id
      status
      steps {
        id
        status
        task {
          id
        }
      }
    }
  }
`;

const RUN = /* GraphQL */ `
  query Run($id: ID!) {
    workflowRun(id: $id) {
      status
      progress
      result
      finishedAt
      steps {
        id
        status
        agentId
        action
        result
        task {
          id
          status
        }
      }
    }
  }
`;

const EVENTS = /* GraphQL */ `
  subscription Events($id: ID!, $after: String) {
    workflowRunEvents(id: $id, after: $after) {
      type
      cursor
      workflowRunId
    }
  }
`;

/** The documented example: three built-in agents, `review` reads `research`'s result. */
const EXAMPLE = {
  steps: [
    {
      id: 'research',
      agentId: 'analyst',
      action: 'wait',
      input: { ms: { $ref: 'input.researchMs' }, steps: 2 },
    },
    { id: 'draft', agentId: 'marketer', action: 'ping', dependsOn: ['research'] },
    {
      id: 'review',
      agentId: 'qa',
      action: 'wait',
      input: { ms: { $ref: 'research.result.waitedMs' } },
      dependsOn: ['research', 'draft'],
    },
  ],
};

describeEachDatabase('workflows over GraphQL', (kind) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(kind);
  }, 120_000);
  afterAll(() => server?.close());

  async function eventsOverWebSocket(id: string, after: string | null, stopAfter?: number) {
    const client = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket });
    const events: { type: string; cursor: string; workflowRunId: string }[] = [];
    try {
      const subscription = client.iterate<AnyData>({ query: EVENTS, variables: { id, after } });
      for await (const result of subscription) {
        if (result.errors) throw new Error(JSON.stringify(result.errors));
        events.push(result.data.workflowRunEvents);
        if (stopAfter && events.length === stopAfter) {
          await subscription.return?.();
          break;
        }
      }
    } finally {
      await client.dispose();
    }
    return events;
  }

  it('runs the documented three-agent example, each step visible live', async () => {
    const started = await data(server.url, EXECUTE, { definition: EXAMPLE, input: { researchMs: 200 } });
    const run = started.executeWorkflow;
    expect(run.status).toBe('RUNNING');
    expect(run.steps.map((step: AnyData) => step.status)).toEqual(['RUNNING', 'PENDING', 'PENDING']);

    const firstTwo = await eventsOverWebSocket(run.id, null, 2);
    const rest = await eventsOverWebSocket(run.id, firstTwo.at(-1)!.cursor);
    const events = [...firstTwo, ...rest];
    expect(events.map((event) => event.type)).toEqual([
      'workflow_started',
      'workflow_step_started',
      'workflow_step_succeeded',
      'workflow_step_started',
      'workflow_step_succeeded',
      'workflow_step_started',
      'workflow_step_succeeded',
      'workflow_succeeded',
    ]);
    expect(new Set(events.map((event) => event.cursor)).size).toBe(events.length);
    expect(events.every((event) => event.workflowRunId === run.id)).toBe(true);

    const { workflowRun } = await data(server.url, RUN, { id: run.id });
    expect(workflowRun).toMatchObject({
      status: 'SUCCEEDED',
      progress: 1,
      result: { review: { waitedMs: 200, steps: 0 } },
    });
    expect(workflowRun.finishedAt).not.toBeNull();
    expect(workflowRun.steps.map((step: AnyData) => [step.agentId, step.status, step.task.status])).toEqual([
      ['analyst', 'SUCCEEDED', 'SUCCEEDED'],
      ['marketer', 'SUCCEEDED', 'SUCCEEDED'],
      ['qa', 'SUCCEEDED', 'SUCCEEDED'],
    ]);
  });

  it('refuses a bad definition with BAD_USER_INPUT naming the step, writing nothing', async () => {
    const count = async () =>
      (await server.testDb.db.query<{ n: number }>('select count(*)::int as n from cas_workflow_runs'))[0]!.n;
    const before = await count();
    const response = await gql(server.url, EXECUTE, {
      definition: {
        steps: [
          { id: 'a', agentId: 'planner', action: 'ping', input: { $ref: 'b.result' } },
          { id: 'b', agentId: 'planner', action: 'ping' },
        ],
      },
    });
    expect(response.body.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      stepId: 'a',
    });
    expect(await count()).toBe(before);
  });
});
