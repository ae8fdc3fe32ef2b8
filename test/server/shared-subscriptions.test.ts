/**
 * Shared subscriptions (src/server/shared-subscriptions.ts): graphql-ws subscribers of the same
 * live-only operation, variables and viewer share one execution per event; others do not; each
 * keeps its own end. Real server, real database, real graphql-ws clients over real sockets. The
 * executions are counted by the server's own metrics.
 */
import { parse } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LOCAL_VIEWER, type Viewer } from '../../src/auth/roles.js';
import { schema } from '../../src/graphql/schema.js';
import { shareKey } from '../../src/server/shared-subscriptions.js';
import { describeEachDatabase } from '../support/databases.js';
import { data, startTestServer, type AnyData, type TestServer } from './harness.js';

/** Ceiling for a subscriber to see what it waits for: generous, for a loaded machine. */
const CEILING_MS = 80_000;

const EVENTS =
  'subscription($agentId: ID, $types: [String!], $after: String) { events(agentId: $agentId, types: $types, after: $after) { cursor type agentId payload } }';

/** A client whose socket is open and acknowledged when this resolves. */
async function connected(server: TestServer): Promise<Client> {
  let ready!: () => void;
  const acknowledged = new Promise<void>((resolve) => (ready = resolve));
  const client = createClient({
    url: server.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    on: { connected: () => ready() },
  });
  await acknowledged;
  return client;
}

/** One subscription's results as received (the whole `next` payload), until it is stopped. */
class Collector {
  readonly results: AnyData[] = [];
  error: unknown = null;
  completed = false;
  private waiters: (() => void)[] = [];
  readonly stop: () => void;

  constructor(client: Client, variables: Record<string, unknown>) {
    this.stop = client.subscribe<AnyData>(
      { query: EVENTS, variables },
      {
        next: (result) => {
          this.results.push(result);
          this.wake();
        },
        error: (error) => {
          this.error = error;
          this.wake();
        },
        complete: () => {
          this.completed = true;
          this.wake();
        },
      },
    );
  }

  get versions(): number[] {
    return this.results.map((result) => result.data?.events.payload.version as number);
  }

  /** Resolves once `check` holds (re-checked on each result); fails at the ceiling. */
  async until(check: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + CEILING_MS;
    while (!check()) {
      if (this.error) throw new Error(`subscription failed: ${JSON.stringify(this.error)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 1_000);
      });
    }
  }

  private wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

describeEachDatabase('shared subscriptions', (kind) => {
  let server: TestServer;
  const clients: Client[] = [];

  beforeAll(async () => {
    server = await startTestServer(kind);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.dispose()));
    // Their sockets closed, the server ends the streams they shared (on its own time).
    await untilMetric('cas_graphql_shared_subscription_streams', 0);
  });
  afterAll(async () => {
    await server?.close();
  });

  const client = async () => {
    const opened = await connected(server);
    clients.push(opened);
    return opened;
  };

  /** Writes the next state version of `agentId`; its event's payload carries that version. */
  const write = async (agentId: string): Promise<number> => {
    const { updateAgentState } = await data(
      server.url,
      `mutation { updateAgentState(agentId: "${agentId}", data: { at: ${Date.now()} }) { version } }`,
    );
    return updateAgentState.version as number;
  };

  /**
   * Writes until every collector has received something (a live-only subscription is live only
   * once the server has set it up, which the protocol does not acknowledge), then one more version
   * that all of them see: they are live and level from there.
   */
  const untilLive = async (agentId: string, collectors: Collector[]) => {
    const deadline = Date.now() + CEILING_MS;
    while (!collectors.every((collector) => collector.results.length > 0)) {
      if (Date.now() > deadline) throw new Error('the subscriptions never went live');
      await write(agentId);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const level = await write(agentId);
    for (const collector of collectors)
      await collector.until(() => collector.versions.includes(level), `version ${level}`);
    return level;
  };

  /** Polls the metric until it reads `value` (the server settles an unsubscribe on its own time). */
  const untilMetric = async (name: string, value: number) => {
    const deadline = Date.now() + CEILING_MS;
    while ((await metric(name)) !== value) {
      if (Date.now() > deadline) throw new Error(`${name} never read ${value}: ${await metric(name)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const metric = async (name: string) => {
    const found = server.runtime.processMetrics.registry.getSingleMetric(name);
    const values = (await found?.get())?.values ?? [];
    return values.reduce((sum, sample) => sum + sample.value, 0);
  };

  it('subscribers of the same operation get the same results from one execution per event', async () => {
    const variables = { agentId: 'marketer', types: ['state_updated'] };
    const a = new Collector(await client(), variables);
    const b = new Collector(await client(), variables);
    await untilLive('marketer', [a, b]);
    expect(await metric('cas_graphql_shared_subscription_streams')).toBe(1);

    const computedBefore = await metric('cas_graphql_shared_subscription_results_total');
    const [skipA, skipB] = [a.results.length, b.results.length];
    const written: number[] = [];
    for (let i = 0; i < 5; i++) written.push(await write('marketer'));
    const all = () => [a, b].every((c) => c.versions.includes(written.at(-1)!));
    await a.until(all, 'the last version');
    await b.until(all, 'the last version');

    const fresh = (c: Collector, skip: number) => c.results.slice(skip);
    expect(fresh(a, skipA).map((r) => r.data.events.payload.version)).toEqual(written);
    expect(fresh(a, skipA)).toEqual(fresh(b, skipB));
    // One execution per event for both subscribers, not one each.
    expect((await metric('cas_graphql_shared_subscription_results_total')) - computedBefore).toBe(5);
  });

  it('one subscriber unsubscribing does not end the stream of another', async () => {
    const variables = { agentId: 'analyst', types: ['state_updated'] };
    const a = new Collector(await client(), variables);
    const b = new Collector(await client(), variables);
    await untilLive('analyst', [a, b]);
    const activeBefore = await metric('cas_graphql_subscriptions_active');

    a.stop();
    const next = await write('analyst');
    await b.until(() => b.versions.includes(next), `version ${next}`);
    const after = await write('analyst');
    await b.until(() => b.versions.includes(after), `version ${after}`);
    expect(b.completed).toBe(false);
    expect(b.error).toBe(null);
    expect(b.versions.slice(-2)).toEqual([next, after]);
    expect(a.versions).not.toContain(after);
    await untilMetric('cas_graphql_subscriptions_active', activeBefore - 1);
    expect(await metric('cas_graphql_shared_subscription_streams')).toBe(1);

    b.stop();
    // The last subscriber gone, the stream stops.
    await untilMetric('cas_graphql_shared_subscription_streams', 0);
  });

  it('different variables do not share, and each gets only what it asked for', async () => {
    const a = new Collector(await client(), { agentId: 'planner', types: ['state_updated'] });
    const b = new Collector(await client(), { agentId: 'tester', types: ['state_updated'] });
    await untilLive('planner', [a]);
    await untilLive('tester', [b]);
    expect(await metric('cas_graphql_shared_subscription_streams')).toBe(2);
    const plannerVersion = await write('planner');
    const testerVersion = await write('tester');
    await a.until(() => a.versions.includes(plannerVersion), 'the planner version');
    await b.until(() => b.versions.includes(testerVersion), 'the tester version');
    expect(a.results.every((r) => r.data.events.agentId === 'planner')).toBe(true);
    expect(b.results.every((r) => r.data.events.agentId === 'tester')).toBe(true);
  });

  it('a subscriber with a cursor runs alone and resumes gap-free beside a shared stream', async () => {
    const live = new Collector(await client(), { agentId: 'qa', types: ['state_updated'] });
    await untilLive('qa', [live]);
    const { events } = await data(
      server.url,
      '{ events(agentId: "qa", types: ["state_updated"], last: 1) { edges { cursor node { payload } } } }',
    );
    const cursor = events.edges[0].cursor;
    const missed = [await write('qa'), await write('qa')];
    await live.until(() => live.versions.includes(missed[1]!), 'the missed versions');
    const computedBefore = await metric('cas_graphql_shared_subscription_results_total');
    const streamsBefore = await metric('cas_graphql_shared_subscription_streams');

    const resumed = new Collector(await client(), { agentId: 'qa', types: ['state_updated'], after: cursor });
    await resumed.until(() => resumed.results.length >= 2, 'the replay');
    const later = await write('qa');
    await resumed.until(() => resumed.versions.includes(later), 'the live version');
    await live.until(() => live.versions.includes(later), 'the live version');
    expect(resumed.versions).toEqual([...missed, later]);
    expect(await metric('cas_graphql_shared_subscription_streams')).toBe(streamsBefore);
    // Only the shared stream's one execution of the new event is counted.
    expect((await metric('cas_graphql_shared_subscription_results_total')) - computedBefore).toBe(1);
  });
});

/** The key is a pure function of the request: checked here for what sockets would only show slowly. */
it('shareKey: same operation, variables and viewer share; other viewers, cursors and fields do not', () => {
  const key = (query: string, variables: Record<string, unknown> = {}, viewer: Viewer = LOCAL_VIEWER) =>
    shareKey({ schema, document: parse(query), operationName: undefined, variables, viewer });
  const document = parse(EVENTS);
  const same = (variables: Record<string, unknown>, viewer: Viewer) =>
    shareKey({ schema, document, operationName: undefined, variables, viewer });
  const user = (id: string, role: Viewer['role'] = 'viewer'): Viewer => ({
    kind: 'user',
    id,
    role,
    grants: ['tasks:all'],
  });

  expect(same({ types: ['state_updated'] }, user('u1'))).toBe(same({ types: ['state_updated'] }, user('u1')));
  expect(same({ types: ['state_updated'] }, user('u1'))).not.toBe(
    same({ types: ['state_updated'] }, user('u2')),
  );
  expect(same({ types: ['state_updated'] }, user('u1'))).not.toBe(
    same({ types: ['state_updated'] }, user('u1', 'admin')),
  );
  expect(same({ types: ['state_updated'] }, user('u1'))).not.toBe(
    same({ types: ['task_queued'] }, user('u1')),
  );
  // A cursor, literal or variable, replays from a position of its own: never shared.
  expect(same({ after: 'MTIz' }, LOCAL_VIEWER)).toBeNull();
  expect(same({ after: null }, LOCAL_VIEWER)).not.toBeNull();
  expect(key('subscription { events(after: "MTIz") { cursor } }')).toBeNull();
  expect(key('subscription($a: String = "MTIz") { events(after: $a) { cursor } }')).toBeNull();
  // Streams that start from a task's first event or a snapshot are never shared.
  expect(key('subscription { taskEvents(taskId: "t") { cursor } }')).toBeNull();
  expect(key('subscription { taskUpdated(taskId: "t") { id } }')).toBeNull();
  expect(key('{ health { ok } }')).toBeNull();
  expect(key('subscription { agentStatusChanged { id } }')).not.toBeNull();
  expect(key('subscription { logAdded { cursor } }')).not.toBeNull();
  expect(
    shareKey({ schema, document, operationName: undefined, variables: {}, viewer: undefined }),
  ).toBeNull();
});
