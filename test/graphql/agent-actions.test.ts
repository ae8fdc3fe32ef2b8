/**
 * Agent.actions over HTTP, for agents loaded from code (the documented example folder): each
 * action with its description and JSON Schemas, the diagnostics included; executeTask checks input
 * against the schema (BAD_USER_INPUT) and runs the action.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadAgents } from '../../src/agents/loader.js';
import { describeEachDatabase } from '../support/databases.js';
import { ROOT } from '../support/spawned.js';
import { data, errorCodes, gql, startTestServer, type TestServer } from '../server/harness.js';

const ACTIONS = /* GraphQL */ `
  query Actions($id: ID!) {
    agent(id: $id) {
      id
      actions {
        name
        description
        inputSchema
        outputSchema
      }
      actionNames
    }
  }
`;

const EXECUTE = /* GraphQL */ `
  mutation Execute($input: ExecuteTaskInput!) {
    executeTask(input: $input) {
      status
      result
      error {
        code
      }
    }
  }
`;

describeEachDatabase('Agent.actions of agents in code', (kind) => {
  let server: TestServer;

  beforeAll(async () => {
    const agents = await loadAgents({ dir: 'examples/agents', explicit: true, cwd: ROOT });
    server = await startTestServer(kind, { agents });
  });
  afterAll(() => server?.close());

  it('lists each action with its JSON Schemas, sorted, the diagnostics included', async () => {
    const { agent } = await data(server.url, ACTIONS, { id: 'reviewer' });
    expect(agent.actions.map((action: { name: string }) => action.name)).toEqual([
      'fail',
      'ping',
      'review',
      'wait',
    ]);
    expect(agent.actionNames).toEqual(['fail', 'ping', 'review', 'wait']);
    const review = agent.actions.find((action: { name: string }) => action.name === 'review');
    expect(review).toEqual({
      name: 'review',
      description: 'Reviews a draft: approves it, or lists what to change.',
      inputSchema: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: {
          title: { type: 'string', minLength: 1, maxLength: 200 },
          body: { type: 'string', maxLength: 100_000 },
        },
        required: ['title', 'body'],
      },
      outputSchema: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: { approved: { type: 'boolean' }, comments: { type: 'array', items: { type: 'string' } } },
        required: ['approved', 'comments'],
        additionalProperties: false,
      },
    });
    const ping = agent.actions.find((action: { name: string }) => action.name === 'ping');
    expect(ping.description).toContain('pong');
    expect(ping.inputSchema).toEqual({ $schema: 'https://json-schema.org/draft/2020-12/schema' });
  });

  it('computes the schemas once, not per request', () => {
    const [first, second] = [
      server.runtime.describeActions('writer'),
      server.runtime.describeActions('writer'),
    ];
    const publish = (actions: typeof first) => actions.find((action) => action.name === 'publish')!;
    expect(publish(first).inputSchema).not.toBeNull();
    expect(publish(second).inputSchema).toBe(publish(first).inputSchema);
  });

  it('runs a loaded action; input failing its schema is BAD_USER_INPUT', async () => {
    const { executeTask } = await data(server.url, EXECUTE, {
      input: { agentId: 'reviewer', action: 'review', input: { title: 'Hi', body: 'short' }, wait: true },
    });
    expect(executeTask).toEqual({
      status: 'SUCCEEDED',
      result: { approved: false, comments: ['the body is shorter than 20 characters'] },
      error: null,
    });

    const refused = await gql(server.url, EXECUTE, {
      input: { agentId: 'reviewer', action: 'review', input: { title: '' } },
    });
    expect(errorCodes(refused)).toEqual(['BAD_USER_INPUT']);
    expect(refused.body.errors![0]!.message).toMatch(/title.*body|body.*title/);
  });

  it('keeps the diagnostics on a loaded agent', async () => {
    const { executeTask } = await data(server.url, EXECUTE, {
      input: { agentId: 'writer', action: 'ping', wait: true },
    });
    expect(executeTask).toEqual({ status: 'SUCCEEDED', result: { pong: true }, error: null });
  });
});
