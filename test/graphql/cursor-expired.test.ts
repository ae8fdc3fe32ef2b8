/**
 * The change feed across retention, over GraphQL: a cursor older than the kept history gets
 * CURSOR_EXPIRED (events and logs connections, events and taskEvents subscriptions); a cursor at
 * the oldest kept position resumes with nothing missing.
 */
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeCursor } from '../../src/domains/pagination.js';
import { describeEachDatabase } from '../support/databases.js';
import { data, errorCodes, gql, startTestServer, type AnyData, type TestServer } from '../server/harness.js';

const eventCursor = (seq: number) => encodeCursor('event', seq);
const logCursor = (id: number) => encodeCursor('log', id);

/** The first result of a subscription: its data, or its errors' codes. */
function firstResult(client: Client, query: string, variables: Record<string, unknown>) {
  return new Promise<{ data?: AnyData; codes?: unknown[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no result in time')), 20_000);
    const unsubscribe = client.subscribe<AnyData>(
      { query, variables },
      {
        next: (result) => {
          clearTimeout(timer);
          unsubscribe();
          resolve(
            result.errors ? { codes: result.errors.map((e) => e.extensions?.code) } : { data: result.data },
          );
        },
        error: (error) => {
          clearTimeout(timer);
          const errors = Array.isArray(error) ? (error as { extensions?: { code?: unknown } }[]) : [];
          if (errors.length > 0) resolve({ codes: errors.map((e) => e.extensions?.code) });
          else reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        },
        complete: () => undefined,
      },
    );
  });
}

describeEachDatabase('CURSOR_EXPIRED across retention', (kind) => {
  let server: TestServer;
  let client: Client;
  let prunedThrough: number;
  let prunedLogsThrough: number;
  let keptTask: string;

  beforeAll(async () => {
    server = await startTestServer(kind);
    client = createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: true,
    });
    const run = async () =>
      (
        await data(
          server.url,
          'mutation { executeTask(input: { agentId: "analyst", action: "ping", wait: true }) { id status } }',
        )
      ).executeTask.id as string;
    const oldTask = await run();
    keptTask = await run();
    const db = server.testDb.db;
    await db.query(
      `insert into cas_agent_logs (agent_id, level, message, created_at)
       select 'analyst', 'info', 'entry ' || n, now() - case when n <= 3 then interval '40 days' else interval '0' end
       from generate_series(1, 6) as n`,
    );
    // The first task and everything logged before its end are 40 days old; the rest is recent.
    await db.query(`update cas_tasks set finished_at = finished_at - interval '40 days' where id = $1`, [
      oldTask,
    ]);
    await db.query(
      `update cas_agent_events set created_at = created_at - interval '40 days'
       where seq <= (select max(seq) from cas_agent_events where task_id = $1)`,
      [oldTask],
    );
    for (;;) {
      const [batch] = await db.query<{ events: number; logs: number; tasks: number }>(
        'select * from cas_prune_history(30, 500)',
      );
      if (Number(batch!.events) + Number(batch!.logs) + Number(batch!.tasks) === 0) break;
    }
    const marks = await db.query<{ log: string; pruned_through: string }>('select * from cas_retention');
    prunedThrough = Number(marks.find((mark) => mark.log === 'events')!.pruned_through);
    prunedLogsThrough = Number(marks.find((mark) => mark.log === 'logs')!.pruned_through);
    expect(prunedThrough).toBeGreaterThan(1);
    expect(prunedLogsThrough).toBeGreaterThan(1);
    // A server, two tasks and a prune: slow on a loaded machine, not stuck.
  }, 180_000);
  afterAll(async () => {
    await client?.dispose();
    await server?.close();
  });

  it('events(after) older than the kept history is CURSOR_EXPIRED', async () => {
    const response = await gql(
      server.url,
      'query($after: String) { events(after: $after) { edges { cursor } } }',
      {
        after: eventCursor(prunedThrough - 1),
      },
    );
    expect(errorCodes(response)).toEqual(['CURSOR_EXPIRED']);
  });

  it('events(after) at the oldest kept position continues without a gap', async () => {
    const { events } = await data(
      server.url,
      'query($after: String) { events(after: $after, first: 500) { edges { cursor } } }',
      { after: eventCursor(prunedThrough) },
    );
    const cursors = events.edges.map((edge: AnyData) => edge.cursor);
    const head = (
      await server.testDb.db.query<{ last_seq: string }>('select last_seq from cas_event_sequence')
    )[0]!;
    const expected = Array.from({ length: Number(head.last_seq) - prunedThrough }, (_, i) =>
      eventCursor(prunedThrough + 1 + i),
    );
    expect(cursors).toEqual(expected);
    // Without a cursor, history starts at the same place.
    const { events: all } = await data(server.url, '{ events(first: 1) { edges { cursor } } }');
    expect(all.edges[0].cursor).toBe(eventCursor(prunedThrough + 1));
  });

  it('logs(after) older than the kept history is CURSOR_EXPIRED; at the oldest kept it continues', async () => {
    const expired = await gql(
      server.url,
      'query($after: String) { logs(after: $after) { edges { cursor } } }',
      {
        after: logCursor(prunedLogsThrough - 1),
      },
    );
    expect(errorCodes(expired)).toEqual(['CURSOR_EXPIRED']);
    const { logs } = await data(
      server.url,
      'query($after: String) { logs(after: $after) { edges { node { message } } } }',
      { after: logCursor(prunedLogsThrough) },
    );
    expect(logs.edges.map((edge: AnyData) => edge.node.message)).toEqual(['entry 4', 'entry 5', 'entry 6']);
  });

  it('the events subscription refuses an expired cursor and resumes from a kept one', async () => {
    const query = 'subscription($after: String) { events(after: $after) { cursor } }';
    expect(await firstResult(client, query, { after: eventCursor(1) })).toEqual({
      codes: ['CURSOR_EXPIRED'],
    });
    expect(await firstResult(client, query, { after: eventCursor(prunedThrough) })).toEqual({
      data: { events: { cursor: eventCursor(prunedThrough + 1) } },
    });
  });

  it('taskEvents refuses an expired cursor', async () => {
    const query =
      'subscription($taskId: ID!, $after: String) { taskEvents(taskId: $taskId, after: $after) { type } }';
    expect(await firstResult(client, query, { taskId: keptTask, after: eventCursor(1) })).toEqual({
      codes: ['CURSOR_EXPIRED'],
    });
    expect(await firstResult(client, query, { taskId: keptTask })).toEqual({
      data: { taskEvents: { type: 'task_queued' } },
    });
  });
});
