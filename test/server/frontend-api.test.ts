/**
 * What a frontend needs beyond the basics, over real HTTP and graphql-ws: streams that start from a
 * known point (logAdded and agentStatusChanged with `after`, Query.eventHead and logHead), backward
 * paging and totalCount on the log-like connections, metric buckets for charts, and state history.
 */
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { describeEachDatabase } from '../support/databases.js';
import {
  data,
  errorCodes,
  gql,
  reportingStalls,
  startTestServer,
  type AnyData,
  type TestServer,
} from './harness.js';

/** Ceiling for a subscription to see what it waits for: generous, for a loaded machine. */
const SUBSCRIPTION_CEILING_MS = 80_000;
/**
 * A test that waits on a stream gets longer than the ceiling (the suite's default is 30 s), so on a
 * loaded machine it ends with the ceiling's message, which says what arrived, not a bare timeout.
 */
const STREAM_TEST_TIMEOUT_MS = SUBSCRIPTION_CEILING_MS + 20_000;
const AGENT = 'fe-logger';

/** Collects `data[field]` of each result until `count` arrived, then unsubscribes. */
function take(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  count: number,
): Promise<AnyData[]> {
  return new Promise((resolve, reject) => {
    const items: AnyData[] = [];
    const timer = setTimeout(
      () => reject(new Error(`only ${items.length} of ${count} arrived: ${JSON.stringify(items)}`)),
      SUBSCRIPTION_CEILING_MS,
    );
    const stop = client.subscribe<AnyData>(
      { query, variables },
      {
        next: (result) => {
          if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
          items.push(Object.values(result.data ?? {})[0]);
          if (items.length === count) {
            clearTimeout(timer);
            stop();
            resolve(items);
          }
        },
        error: (error) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        },
        complete: () => undefined,
      },
    );
  });
}

/** The first result (or error) of a subscription. */
function firstResult(client: Client, query: string, variables: Record<string, unknown> = {}) {
  return new Promise<AnyData>((resolve) => {
    const stop = client.subscribe<AnyData>(
      { query, variables },
      {
        next: (result) => {
          stop();
          resolve(result);
        },
        error: (error) => resolve({ errors: Array.isArray(error) ? error : [error] }),
        complete: () => undefined,
      },
    );
  });
}

describeEachDatabase('the API a frontend needs', (kind) => {
  let server: TestServer;
  let client: Client;

  /** Runs a task of AGENT that logs `messages` (info) and waits for it to end; its id. */
  async function logging(...messages: string[]): Promise<string> {
    const { executeTask } = await reportingStalls(
      server,
      data(
        server.url,
        'mutation($input: JSON) { executeTask(input: { agentId: "fe-logger", action: "logMany", input: $input, wait: true }) { id status } }',
        { input: { messages } },
      ),
    );
    expect(executeTask.status).toBe('SUCCEEDED');
    return executeTask.id;
  }

  beforeAll(async () => {
    server = await startTestServer(kind);
    await server.runtime.registerAgent({ id: AGENT, name: 'Logger', role: 'tests' });
    server.runtime.defineActions(AGENT, {
      logMany: async (input, ctx) => {
        for (const message of (input as { messages: string[] }).messages) ctx.log('info', message);
        return { logged: true };
      },
    });
    client = createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
  }, 120_000);

  afterAll(async () => {
    await client?.dispose();
    await server?.close();
  });

  it(
    'logAdded(after) replays the entries after a LogEntry.cursor, then goes live, none missed or repeated',
    async () => {
      const taskId = await logging('a1', 'a2', 'a3');
      const { logs } = await data(
        server.url,
        'query($id: ID!) { logs(taskId: $id) { edges { cursor node { cursor message } } } }',
        { id: taskId },
      );
      const edges = logs.edges as { cursor: string; node: { cursor: string; message: string } }[];
      expect(edges.map((edge) => edge.node.message)).toEqual(['a1', 'a2', 'a3']);
      for (const edge of edges) expect(edge.node.cursor).toBe(edge.cursor);

      const received = take(
        client,
        'subscription($after: String) { logAdded(agentId: "fe-logger", after: $after) { message cursor } }',
        { after: edges[0]!.cursor },
        4,
      );
      await logging('b1', 'b2');
      const entries = await received;
      expect(entries.map((entry) => entry.message)).toEqual(['a2', 'a3', 'b1', 'b2']);
      expect(new Set(entries.map((entry) => entry.cursor)).size).toBe(4);
    },
    STREAM_TEST_TIMEOUT_MS,
  );

  it(
    'logHead taken before a write: a stream started from it later still gets that write',
    async () => {
      const { logHead } = await data(server.url, '{ logHead }');
      await logging('c1');
      const [entry] = await take(
        client,
        'subscription($after: String) { logAdded(agentId: "fe-logger", after: $after) { message } }',
        { after: logHead },
        1,
      );
      expect(entry.message).toBe('c1');
    },
    STREAM_TEST_TIMEOUT_MS,
  );

  it(
    'agentStatusChanged(after) first catches up on the agents that changed after the cursor, once each',
    async () => {
      const { eventHead } = await data(server.url, '{ eventHead }');
      await server.runtime.registerAgent({ id: 'fe-late', name: 'Late', role: 'tests' });
      await data(
        server.url,
        'mutation { executeTask(input: { agentId: "fe-late", action: "ping", wait: true }) { status } }',
      );
      const received = take(
        client,
        'subscription($after: String) { agentStatusChanged(after: $after) { id } }',
        { after: eventHead },
        2,
      );
      // The catch-up gives fe-late once (registered, started, completed since the head); live
      // changes follow it.
      await server.runtime.registerAgent({ id: 'fe-later', name: 'Later', role: 'tests' });
      const agents = await received;
      expect(agents.map((agent) => agent.id)).toEqual(['fe-late', 'fe-later']);
    },
    STREAM_TEST_TIMEOUT_MS,
  );

  it('a stream cursor that was never handed out is refused up front', async () => {
    const future = Buffer.from('log:999999999').toString('base64url');
    for (const [query, after] of [
      ['subscription($after: String) { logAdded(after: $after) { id } }', future],
      ['subscription($after: String) { logAdded(after: $after) { id } }', 'not-a-cursor'],
      [
        'subscription($after: String) { agentStatusChanged(after: $after) { id } }',
        Buffer.from('event:999999999').toString('base64url'),
      ],
    ] as const) {
      const result = await firstResult(client, query, { after });
      expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
  });

  it('events and logs page backwards with last/before, in the order forward pages use, and count with totalCount', async () => {
    const taskId = await logging('d1', 'd2', 'd3', 'd4', 'd5');
    for (const field of ['events', 'logs'] as const) {
      const node = field === 'events' ? 'type' : 'message';
      const forward = await data(
        server.url,
        `query($id: ID!) { ${field}(taskId: $id, first: 500) { totalCount edges { cursor node { ${node} } } } }`,
        { id: taskId },
      );
      const all = forward[field].edges.map((edge: AnyData) => edge.cursor) as string[];
      expect(forward[field].totalCount).toBe(all.length);
      expect(all.length).toBeGreaterThanOrEqual(3);

      // Backwards from the newest, two at a time, until the first: the same items.
      const pages: string[][] = [];
      let before: string | null = null;
      for (let hasPrevious = true; hasPrevious;) {
        const page: AnyData = await data(
          server.url,
          `query($id: ID!, $before: String) { ${field}(taskId: $id, last: 2, before: $before) {
            totalCount edges { cursor } pageInfo { hasPreviousPage startCursor endCursor } } }`,
          { id: taskId, before },
        );
        const cursors = page[field].edges.map((edge: AnyData) => edge.cursor) as string[];
        expect(page[field].totalCount).toBe(all.length);
        expect(page[field].pageInfo.startCursor).toBe(cursors[0]);
        pages.unshift(cursors);
        hasPrevious = page[field].pageInfo.hasPreviousPage;
        before = page[field].pageInfo.startCursor;
      }
      expect(pages.flat()).toEqual(all);
      expect(pages.at(-1)).toEqual(all.slice(-2));
    }
    const { logs } = await data(
      server.url,
      'query($id: ID!) { logs(taskId: $id, levels: [ERROR]) { totalCount } }',
      { id: taskId },
    );
    expect(logs.totalCount).toBe(0);
  });

  it('tasks page backwards (towards newer ones) with last/before, newest first like forward pages', async () => {
    for (let n = 0; n < 5; n += 1) await logging(`t${n}`);
    const forward = await data(
      server.url,
      '{ tasks(agentId: "fe-logger", first: 500) { totalCount edges { cursor } pageInfo { endCursor } } }',
    );
    const all = forward.tasks.edges.map((edge: AnyData) => edge.cursor) as string[];
    expect(all.length).toBe(forward.tasks.totalCount);
    const pages: string[][] = [];
    let before: string | null = null;
    for (let hasPrevious = true; hasPrevious;) {
      const page: AnyData = await data(
        server.url,
        `query($before: String) { tasks(agentId: "fe-logger", last: 2, before: $before) {
          edges { cursor } pageInfo { hasPreviousPage startCursor } } }`,
        { before },
      );
      pages.unshift(page.tasks.edges.map((edge: AnyData) => edge.cursor));
      hasPrevious = page.tasks.pageInfo.hasPreviousPage;
      before = page.tasks.pageInfo.startCursor;
    }
    expect(pages.flat()).toEqual(all);
    // From the middle: the two listed just before the fourth (the third and second newest).
    const { tasks } = await data(
      server.url,
      'query($before: String) { tasks(agentId: "fe-logger", last: 2, before: $before) { edges { cursor } } }',
      { before: all[3] },
    );
    expect(tasks.edges.map((edge: AnyData) => edge.cursor)).toEqual(all.slice(1, 3));
  });

  it('refuses a mix of forward and backward paging', async () => {
    for (const query of [
      '{ events(first: 2, last: 2) { totalCount } }',
      '{ logs(after: "x", before: "y") { totalCount } }',
      '{ events(last: 0) { totalCount } }',
      '{ tasks(first: 1, before: "x") { totalCount } }',
    ]) {
      expect(errorCodes(await gql(server.url, query))).toEqual(['BAD_USER_INPUT']);
    }
  });

  it('metricSeries gives buckets with count, avg, p50, p95 and max computed by the database', async () => {
    const points: [string, number][] = [
      ['2026-01-01T00:00:10Z', 1],
      ['2026-01-01T00:00:20Z', 2],
      ['2026-01-01T00:00:30Z', 3],
      ['2026-01-01T00:00:59Z', 4],
      ['2026-01-01T00:01:30Z', 10],
      ['2026-01-01T00:01:31Z', 20],
      // Outside [from, to): not counted.
      ['2026-01-01T00:03:00Z', 1000],
    ];
    for (const [at, value] of points) {
      await server.testDb.db.query(
        `insert into cas_metrics_timeseries (agent_id, metric_name, value, recorded_at) values ('qa', 'fe_chart', $1, $2)`,
        [value, at],
      );
    }
    const { metricSeries } = await data(
      server.url,
      `{ metricSeries(agentId: "qa", name: "fe_chart", from: "2026-01-01T00:00:00Z", to: "2026-01-01T00:03:00Z", bucket: 60) {
        start count avg p50 p95 max } }`,
    );
    expect(metricSeries).toEqual([
      {
        start: '2026-01-01T00:00:00.000Z',
        count: 4,
        avg: 2.5,
        p50: 2.5,
        p95: expect.closeTo(3.85, 6),
        max: 4,
      },
      {
        start: '2026-01-01T00:01:00.000Z',
        count: 2,
        avg: 15,
        p50: 15,
        p95: expect.closeTo(19.5, 6),
        max: 20,
      },
    ]);
    // Without a bucket width: the range in about 60 buckets (here 3 s each).
    const { metricSeries: fine } = await data(
      server.url,
      '{ metricSeries(agentId: "qa", name: "fe_chart", from: "2026-01-01T00:00:00Z", to: "2026-01-01T00:03:00Z") { count } }',
    );
    expect(fine.map((bucket: AnyData) => bucket.count)).toEqual([1, 1, 1, 1, 2]);

    const refused = await Promise.all(
      [
        '{ metricSeries(agentId: "qa", name: "fe_chart", from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", bucket: 1) { count } }',
        '{ metricSeries(agentId: "qa", name: "fe_chart", from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z") { count } }',
        '{ metricSeries(agentId: "qa", name: "fe_chart", bucket: 0) { count } }',
        '{ metricSeries(agentId: "qa", name: "") { count } }',
        '{ metricSeries(agentId: "nobody-here", name: "fe_chart") { count } }',
      ].map(async (query) => errorCodes(await gql(server.url, query))),
    );
    expect(refused).toEqual([
      ['BAD_USER_INPUT'],
      ['BAD_USER_INPUT'],
      ['BAD_USER_INPUT'],
      ['BAD_USER_INPUT'],
      ['NOT_FOUND'],
    ]);
  });

  it('Agent.stateHistory lists versions newest first, for every agent in one batched read', async () => {
    for (const [agentId, versions] of [
      ['planner', 3],
      ['developer', 2],
    ] as const) {
      for (let n = 1; n <= versions; n += 1) {
        await data(
          server.url,
          `mutation { updateAgentState(agentId: "${agentId}", data: { n: ${n} }, expectedVersion: ${n - 1}) { version } }`,
        );
      }
    }
    await data(server.url, 'mutation { resetAgentState(agentId: "developer") }');

    // One batched runtime read for all agents (the workers run, so database round trips would
    // also count their polling).
    const batches: number[] = [];
    const { runtime } = server;
    const read = runtime.getStateHistories.bind(runtime);
    runtime.getStateHistories = (ids, limit) => {
      batches.push(ids.length);
      return read(ids, limit);
    };
    const { agents } = await data(
      server.url,
      '{ agents { id stateHistory(first: 2) { version data } } }',
    ).finally(() => {
      runtime.getStateHistories = read;
    });
    expect(batches).toEqual([agents.length]);

    const history = Object.fromEntries(agents.map((agent: AnyData) => [agent.id, agent.stateHistory]));
    expect(history.planner).toEqual([
      { version: 3, data: { n: 3 } },
      { version: 2, data: { n: 2 } },
    ]);
    // A reset keeps the versions: history still lists them.
    expect(history.developer).toEqual([
      { version: 2, data: { n: 2 } },
      { version: 1, data: { n: 1 } },
    ]);
    expect(history.marketer).toEqual([]);
    expect(
      errorCodes(await gql(server.url, '{ agent(id: "qa") { stateHistory(first: 501) { version } } }')),
    ).toEqual(['BAD_USER_INPUT']);
  });
});
