/**
 * The deployer's flow of the Agent SDK, as a GraphQL client sees it, with the documented example
 * agents (examples/agents): the writer's `publish` action and its JSON Schema, a run that calls the
 * reviewer and waits for a person's approval, each step live on `taskEvents` over graphql-ws, the
 * approval sent with `signalTask`, and the task tree on `Task.children`.
 */
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadAgents } from '../../src/agents/loader.js';
import { describeEachDatabase } from '../support/databases.js';
import { ROOT } from '../support/spawned.js';
import { data, startTestServer, type AnyData, type TestServer } from './harness.js';

/** Generous ceilings for a loaded machine: an order is asserted, not a speed. */
const FLOW_CEILING_MS = 90_000;

const TASK_EVENTS = /* GraphQL */ `
  subscription Steps($taskId: ID!) {
    taskEvents(taskId: $taskId) {
      type
      payload
    }
  }
`;

const TASK = /* GraphQL */ `
  query Task($id: ID!) {
    task(id: $id) {
      status
      result
      waitingFor {
        signals
        childTaskIds
      }
      children {
        agentId
        action
        status
        result
        parent {
          id
        }
      }
    }
  }
`;

/** Collects every event of the task until its stream completes (after its final event). */
function allEvents(client: Client, taskId: string, onEvent: (event: AnyData) => void): Promise<AnyData[]> {
  const events: AnyData[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`stream open after ${events.length} events`)),
      FLOW_CEILING_MS,
    );
    client.subscribe(
      { query: TASK_EVENTS, variables: { taskId } },
      {
        next: (result) => {
          if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
          const event = (result.data as AnyData).taskEvents;
          events.push(event);
          onEvent(event);
        },
        error: reject,
        complete: () => {
          clearTimeout(timer);
          resolve(events);
        },
      },
    );
  });
}

describeEachDatabase('an agent in code, from a GraphQL client', (kind) => {
  let server: TestServer;
  let client: Client;

  beforeAll(async () => {
    const agents = await loadAgents({ dir: 'examples/agents', explicit: true, cwd: ROOT });
    server = await startTestServer(kind, { agents });
    client = createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
  });
  afterAll(async () => {
    await client?.dispose();
    await server?.close();
  });

  it(
    'publish: shows its schema, calls the reviewer, waits for approval, and each step is live',
    { timeout: 120_000 },
    async () => {
      const { agent } = await data(
        server.url,
        'query { agent(id: "writer") { actions { name inputSchema } } }',
      );
      const publish = agent.actions.find((action: AnyData) => action.name === 'publish');
      expect(publish.inputSchema).toMatchObject({ type: 'object', required: ['topic'] });

      const { executeTask: task } = await data(
        server.url,
        'mutation { executeTask(input: { agentId: "writer", action: "publish", input: { topic: "durable agents" } }) { id status } }',
      );
      let approved: Promise<unknown> | null = null;
      const events = await allEvents(client, task.id, (event) => {
        // Approve once the task waits for the signal, as a person in a frontend would.
        if (event.type === 'task_waiting' && event.payload.waitingFor.signals?.includes('approval')) {
          approved = data(
            server.url,
            'mutation($id: ID!) { signalTask(id: $id, name: "approval", payload: { approved: true }) { id } }',
            { id: task.id },
          );
        }
      });
      await approved;

      const steps = events
        .filter((event) => !['task_progress'].includes(event.type))
        .map((event) => (event.payload.step ? `${event.type}:${event.payload.step}` : event.type));
      expect(steps).toEqual([
        'task_queued',
        'task_started',
        'step_started:draft',
        'step_completed:draft',
        'task_waiting', // for the reviewer
        'task_resumed',
        'task_started',
        'task_waiting', // for the approval
        'task_signal_received',
        'task_resumed',
        'task_started',
        'step_started:publish',
        'step_completed:publish',
        'task_completed',
      ]);

      const { task: done } = await data(server.url, TASK, { id: task.id });
      expect(done).toMatchObject({
        status: 'SUCCEEDED',
        result: { published: true, title: 'On durable agents' },
        waitingFor: null,
        children: [{ agentId: 'reviewer', action: 'review', status: 'SUCCEEDED', parent: { id: task.id } }],
      });
    },
  );
});
