/**
 * GraphQL over WebSocket (graphql-ws) on the HTTP server's port and path, and SSE: the same
 * schema, limits and error codes as HTTP, live task streams, and a clean close on shutdown.
 */
import type { FormattedExecutionResult } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { describeEachDatabase } from '../support/databases.js';
import { data, startTestServer, type AnyData, type TestServer } from './harness.js';

/** Every result of one operation, until it completes (or fails at the protocol level). */
function collect(client: Client, query: string, variables?: Record<string, unknown>) {
  return new Promise<FormattedExecutionResult<AnyData, unknown>[]>((resolve, reject) => {
    const results: FormattedExecutionResult<AnyData, unknown>[] = [];
    client.subscribe<AnyData>(
      { query, variables },
      {
        next: (result) => results.push(result),
        // graphql-ws reports refused operations (parse, validation) as an array of GraphQL errors.
        error: (error) =>
          reject(
            error instanceof Error ? error : Object.assign(new Error('operation refused'), { errors: error }),
          ),
        complete: () => resolve(results),
      },
    );
  });
}

describeEachDatabase('GraphQL over WebSocket and SSE', (kind) => {
  let server: TestServer;
  let client: Client;

  beforeAll(async () => {
    server = await startTestServer(kind);
    client = createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: true,
    });
  });
  afterAll(async () => {
    await client?.dispose();
    await server?.close();
  });

  it('runs queries and mutations over the socket', async () => {
    const [agents] = await collect(client, '{ agents { id status } }');
    expect(agents!.data!.agents).toHaveLength(8);
    const [executed] = await collect(
      client,
      'mutation { executeTask(input: { agentId: "qa", action: "ping", wait: true, timeoutMs: 10000 }) { status result } }',
    );
    expect(executed!.data).toEqual({ executeTask: { status: 'SUCCEEDED', result: { pong: true } } });
  });

  it('gives the same coded errors as HTTP', async () => {
    const [notFound] = await collect(
      client,
      'subscription { taskUpdated(id: "00000000-0000-4000-8000-000000000000") { id } }',
    );
    expect(notFound!.errors![0]!.extensions?.code).toBe('NOT_FOUND');
    const [badId] = await collect(client, '{ task(id: "1; drop table cas_tasks") { id } }');
    expect(badId!.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    await expect(collect(client, '{ agents { nope } }')).rejects.toMatchObject({
      errors: [
        {
          message: expect.stringContaining('Cannot query field "nope"'),
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
        },
      ],
    });
    await expect(collect(client, '{ agents { id ')).rejects.toMatchObject({
      errors: [{ message: expect.stringContaining('Syntax Error') }],
    });
    const deep =
      '{ tasks { edges { node { agent { recentTasks { agent { recentTasks { agent { recentTasks { agent { id } } } } } } } } } } }';
    await expect(collect(client, deep)).rejects.toMatchObject({
      errors: [
        {
          message: expect.stringContaining('depth limit'),
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
        },
      ],
    });
  });

  it('taskEvents streams a task from its first event to its final one, and resumes after a cursor', async () => {
    const { executeTask } = await data(
      server.url,
      'mutation { executeTask(input: { agentId: "planner", action: "wait", input: { ms: 300, steps: 3 } }) { id } }',
    );
    const EVENTS =
      'subscription($id: ID!, $after: String) { taskEvents(taskId: $id, after: $after) { type cursor taskId } }';
    const results = await collect(client, EVENTS, { id: executeTask.id });
    const events = results.map((result) => result.data!.taskEvents);
    const types = events.map((event: { type: string }) => event.type);
    expect(types[0]).toBe('task_queued');
    expect(types.at(-1)).toBe('task_completed');
    expect(types.filter((type: string) => type === 'task_progress').length).toBeGreaterThanOrEqual(1);
    for (const event of events) expect(event.taskId).toBe(executeTask.id);

    const resumed = await collect(client, EVENTS, { id: executeTask.id, after: events.at(-2).cursor });
    expect(resumed.map((result) => result.data!.taskEvents.type)).toEqual(['task_completed']);
  });

  it('taskUpdated sends the snapshot, then changes, and completes at the final status', async () => {
    const { executeTask } = await data(
      server.url,
      'mutation { executeTask(input: { agentId: "analyst", action: "wait", input: { ms: 400, steps: 4 } }) { id } }',
    );
    const results = await collect(
      client,
      'subscription($id: ID!) { taskUpdated(id: $id) { id status progress agent { id } } }',
      { id: executeTask.id },
    );
    const snapshots = results.map((result) => result.data!.taskUpdated);
    expect(snapshots.length).toBeGreaterThanOrEqual(2);
    expect(snapshots.at(-1)).toMatchObject({
      id: executeTask.id,
      status: 'SUCCEEDED',
      progress: 1,
      agent: { id: 'analyst' },
    });
    expect(
      new Set(
        snapshots.map(
          (snapshot: { status: string; progress: number }) => `${snapshot.status}${snapshot.progress}`,
        ),
      ).size,
    ).toBe(snapshots.length);
  });

  it('streams subscriptions over SSE too (Accept: text/event-stream)', async () => {
    const { executeTask } = await data(
      server.url,
      'mutation { executeTask(input: { agentId: "marketer", action: "ping", wait: true, timeoutMs: 10000 }) { id } }',
    );
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        query: 'subscription($id: ID!) { taskEvents(taskId: $id) { type } }',
        variables: { id: executeTask.id },
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const text = await response.text();
    const types = [...text.matchAll(/"type":"(\w+)"/g)].map((match) => match[1]);
    expect(types).toEqual(['task_queued', 'task_started', 'task_completed']);
    expect(text).toContain('event: complete');
  });

  it('closes sockets with 1001 (going away) when the server stops', async () => {
    const socket = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await new Promise((resolve) => socket.once('message', resolve));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await server.app.stop();
    expect(await closed).toBe(1001);
  });
});
