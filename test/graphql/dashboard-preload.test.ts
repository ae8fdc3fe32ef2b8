/**
 * Query.agents loads its agents' batched fields (metrics, state, recentTasks) before graphql-js
 * runs them (src/graphql/preload.ts). The answer must be the one each field gives on its own:
 * compared here, over 200 agents with tasks of every final status and of several creators, with
 * `agent(id:)`, which resolves the same fields one agent at a time without preloading; for an
 * admin and for a viewer who sees only their own tasks; with arguments from variables and
 * literals, aliases, fragments and @include. And the round trips stay one per read.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ApiKeys } from '../../src/auth/api-keys.js';
import type { Viewer } from '../../src/auth/roles.js';
import { createContext } from '../../src/graphql/context.js';
import { schema } from '../../src/graphql/schema.js';
import { silentLogger } from '../../src/logger.js';

// The copy of graphql the schema was built with (vitest's own import of 'graphql' is another).
const { execute, parse } = createRequire(import.meta.url)('graphql') as typeof import('graphql');
import type { CustomRuntime } from '../../src/runtime/custom-runtime.js';
import type { AgentRuntime } from '../../src/runtime/agent-runtime.js';
import { describeEachDatabase } from '../support/databases.js';
import { JWT_SECRET, hs256Token } from '../support/auth.js';
import { gql, startTestServer, type AnyData, type TestServer } from '../server/harness.js';

const DOCUMENT = /* GraphQL */ `
  query All($from: DateTime, $withState: Boolean!, $n: Int) {
    agents {
      ...AgentFields
    }
  }
  query One($id: ID!, $from: DateTime, $withState: Boolean!, $n: Int) {
    agent(id: $id) {
      ...AgentFields
    }
  }
  fragment AgentFields on Agent {
    id
    status
    metrics {
      totalRuns
      succeeded
      failed
      cancelled
      successRate
    }
    recent: metrics(from: $from) {
      totalRuns
    }
    state @include(if: $withState) {
      version
      data
    }
    recentTasks(first: 15) {
      id
      status
      createdBy
      action
      result
      error {
        message
        code
      }
      agent {
        id
      }
    }
    five: recentTasks(first: 5) {
      id
      status
    }
    last: recentTasks(first: $n) {
      id
      status
    }
    ... on Agent {
      more: recentTasks {
        id
      }
    }
  }
`;

/** The bench's dashboard query (bench/http.ts). */
const DASHBOARD =
  '{ agents { id status metrics { totalRuns successRate } state { version } recentTasks(first: 5) { id status } } }';

/** Not due for a day: stays queued with no worker looking at it. */
const LATER = () => new Date(Date.now() + 86_400_000);
const CREATORS = [undefined, 'u-alice', 'u-bob'] as const;

type Runtime = CustomRuntime & AgentRuntime;

/**
 * 192 agents beside the 8 built-in ones (200), every tenth with a state; every seventh agent gets
 * tasks from each creator: one queued, one cancelled and, with a worker, one succeeded and one
 * failed.
 */
async function fill(runtime: Runtime, withWorker: boolean): Promise<void> {
  const ids: string[] = ['analyst', 'qa'];
  for (let i = 0; i < 192; i++) {
    const id = `dash-${String(i).padStart(3, '0')}`;
    await runtime.registerAgent({ id, name: `Dash ${i}`, role: 'dash' });
    if (i % 10 === 0) await runtime.updateAgentState(id, { i });
    if (i % 7 === 0) ids.push(id);
  }
  await runtime.updateAgentState('analyst', { note: 'built in' });
  for (const agentId of ids) {
    await Promise.all(
      CREATORS.map(async (userId) => {
        await runtime.executeTask({ agentId, action: 'ping', runAt: LATER(), userId });
        const cancelled = await runtime.executeTask({ agentId, action: 'ping', runAt: LATER(), userId });
        await runtime.cancelTask(cancelled.id);
        if (!withWorker) return;
        await runtime.executeTask({ agentId, action: 'ping', wait: true, timeoutMs: 60_000, userId });
        await runtime.executeTask({
          agentId,
          action: 'fail',
          input: { message: 'on purpose', times: 5 },
          maxAttempts: 1,
          wait: true,
          timeoutMs: 60_000,
          userId,
        });
      }),
    );
  }
}

const bearer = async (sub: string, role?: 'admin') => ({
  authorization: `Bearer ${await hs256Token({ sub, role })}`,
});

async function answer(server: TestServer, operationName: string, variables: object, headers: object) {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query: DOCUMENT, operationName, variables }),
  });
  return (await response.json()) as { data?: AnyData; errors?: AnyData[] };
}

const AUTH_ENV = { CAS_AUTH: 'auto', SUPABASE_JWT_SECRET: JWT_SECRET };

describeEachDatabase('the dashboard with preloaded agent fields', (kind) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(kind, { env: { ...AUTH_ENV, CAS_WORKERS: '1' } });
    await fill(server.runtime, true);
    // About 400 tasks and 200 agents: generous for a busy machine.
  }, 300_000);
  afterAll(() => server?.close());

  it('answers for 200 agents exactly what each agent answers alone, for an admin and for a viewer', async () => {
    const callers = { admin: await bearer('u-admin', 'admin'), alice: await bearer('u-alice') };
    const variants = [
      { from: null, withState: true, n: 2 },
      { from: new Date(Date.now() - 3_600_000).toISOString(), withState: false, n: null },
    ];
    for (const [who, headers] of Object.entries(callers)) {
      for (const variables of variants) {
        const all = await answer(server, 'All', variables, headers);
        expect(all.errors).toBeUndefined();
        const agents = all.data.agents as AnyData[];
        expect(agents).toHaveLength(200);
        const alone = await Promise.all(
          agents.map(async (agent) => {
            const one = await answer(server, 'One', { ...variables, id: agent.id }, headers);
            expect(one.errors).toBeUndefined();
            return one.data.agent;
          }),
        );
        expect(agents).toEqual(alone);

        // The fixture is what it claims: every final status shows, and a viewer sees only theirs.
        const tasks = agents.flatMap((agent) => agent.recentTasks as AnyData[]);
        const statuses = new Set(tasks.map((task) => task.status));
        expect([...statuses].sort()).toEqual(['CANCELLED', 'FAILED', 'QUEUED', 'SUCCEEDED']);
        const creators = new Set(tasks.map((task) => task.createdBy));
        if (who === 'alice') expect([...creators]).toEqual(['u-alice']);
        else expect(creators.size).toBe(3);
        expect(agents.filter((agent) => agent.metrics.totalRuns > 0).length).toBeGreaterThan(20);
        if (variables.withState) expect(agents.filter((agent) => agent.state).length).toBe(1 + 20);
        else expect(agents.every((agent) => !('state' in agent))).toBe(true);
      }
    }
  }, 120_000);

  it('gives one value per agent within an operation that also reads some agents alone', async () => {
    const admin = await bearer('u-admin', 'admin');
    const fields = 'id state { version } metrics { totalRuns } recentTasks(first: 5) { id status }';
    const both = await gql(
      server.url,
      `{ analyst: agent(id: "analyst") { ${fields} } agents { ${fields} } again: agents { ${fields} } }`,
      {},
      admin,
    );
    expect(both.body.errors).toBeUndefined();
    const { analyst, agents, again } = both.body.data;
    expect(agents).toHaveLength(200);
    expect(again).toEqual(agents);
    expect(agents.find((agent: AnyData) => agent.id === 'analyst')).toEqual(analyst);
    expect(analyst.recentTasks).toHaveLength(5);
  });

  it('refuses bad arguments as before: the first agent’s field fails, no data', async () => {
    const admin = await bearer('u-admin', 'admin');
    const firstZero = await gql(server.url, '{ agents { id recentTasks(first: 0) { id } } }', {}, admin);
    expect(firstZero.body.data).toBeNull();
    expect(firstZero.body.errors).toHaveLength(1);
    expect(firstZero.body.errors![0]).toMatchObject({
      path: ['agents', 0, 'recentTasks'],
      extensions: { code: 'BAD_USER_INPUT' },
    });
    const backwards = await gql(
      server.url,
      '{ agents { id metrics(from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z") { totalRuns } } }',
      {},
      admin,
    );
    expect(backwards.body.data).toBeNull();
    expect(backwards.body.errors).toHaveLength(1);
    expect(backwards.body.errors![0]).toMatchObject({
      path: ['agents', 0, 'metrics'],
      extensions: { code: 'BAD_USER_INPUT' },
    });
  });
});

describeEachDatabase('dashboard round trips with preloaded agent fields', (kind) => {
  let server: TestServer;

  beforeAll(async () => {
    // No worker: nothing polls the database in the background while round trips are counted.
    server = await startTestServer(kind, { env: { ...AUTH_ENV, CAS_WORKERS: '0' } });
    await fill(server.runtime, false);
  }, 300_000);
  afterAll(() => server?.close());

  async function trips(query: string, headers: object, variables: Record<string, unknown> = {}) {
    server.queries.count = 0;
    const response = await gql(server.url, query, variables, headers as Record<string, string>);
    expect(response.body.errors).toBeUndefined();
    return { trips: server.queries.count, data: response.body.data };
  }

  it('is one per read: 4 for the dashboard over 200 agents, none for what @include leaves out', async () => {
    for (const headers of [await bearer('u-admin', 'admin'), await bearer('u-bob')]) {
      const dashboard = await trips(DASHBOARD, headers);
      expect(dashboard.data.agents).toHaveLength(200);
      // listAgents, metrics, states, recent tasks.
      expect(dashboard.trips).toBe(4);
      const withoutState = await trips(
        'query($s: Boolean!) { agents { id state @skip(if: $s) { version } metrics { totalRuns } recentTasks(first: 5) { id } } }',
        headers,
        { s: true },
      );
      expect(withoutState.trips).toBe(3);
      // Two page sizes are two reads of recent tasks.
      const twoSizes = await trips(
        '{ agents { state { version } metrics { totalRuns } a: recentTasks(first: 5) { id } b: recentTasks(first: 1) { id } } }',
        headers,
      );
      expect(twoSizes.trips).toBe(5);
    }
  });

  it('leaves every agent field of the dashboard at hand, with no promise per agent', async () => {
    const viewer: Viewer = { kind: 'user', id: 'u-bob', role: 'viewer', grants: [] };
    const context = createContext({
      runtime: server.runtime,
      logger: silentLogger(),
      viewer,
      apiKeys: {} as ApiKeys,
    });
    const result = await execute({ schema, document: parse(DASHBOARD), contextValue: context });
    expect(result.errors).toBeUndefined();
    const { data: overHttp } = await trips(DASHBOARD, await bearer('u-bob'));
    expect(JSON.parse(JSON.stringify(result.data))).toEqual(overHttp);
    const { loaders } = context;
    const ids = (overHttp.agents as { id: string }[]).map((agent) => agent.id);
    expect(ids).toHaveLength(200);
    for (const id of ids) {
      expect(loaders.now(loaders.metrics({}), id)).not.toBeInstanceOf(Promise);
      expect(loaders.now(loaders.states, id)).not.toBeInstanceOf(Promise);
      expect(loaders.now(loaders.recentTasks(5), id)).not.toBeInstanceOf(Promise);
    }
    // Never preloaded: loaded as before.
    const notPreloaded = loaders.now(loaders.recentTasks(7), 'qa');
    expect(notPreloaded).toBeInstanceOf(Promise);
    const qa = overHttp.agents.find((agent: AnyData) => agent.id === 'qa');
    expect((await notPreloaded).map((task) => task.id)).toEqual(
      qa.recentTasks.map((task: AnyData) => task.id),
    );
  });
});
