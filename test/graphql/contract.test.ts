/**
 * Every query and mutation of the api-contract, over HTTP against the real server, on each
 * database. Values are asserted, not only shapes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDatabase } from '../support/databases.js';
import { data, errorCodes, gql, startTestServer, type AnyData, type TestServer } from '../server/harness.js';

const BUILT_IN = ['analyst', 'developer', 'engineer', 'marketer', 'planner', 'qa', 'security', 'tester'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const TASK_FIELDS = /* GraphQL */ `
  id
  agent { id name }
  action
  input
  status
  progress
  progressMessage
  result
  error { message code retryable }
  attempts
  maxAttempts
  createdAt
  startedAt
  finishedAt
  durationMs
  cancelRequestedAt
`;

const EXECUTE = /* GraphQL */ `
  mutation Execute($input: ExecuteTaskInput!) {
    executeTask(input: $input) { ${TASK_FIELDS} }
  }
`;

/** Polls until `check` returns a value (logs are written in batches, shortly after the task). */
async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describeEachDatabase('API contract over HTTP', (kind) => {
  let server: TestServer;
  let url: string;

  beforeAll(async () => {
    server = await startTestServer(kind);
    url = server.url;
  });
  afterAll(() => server?.close());

  describe('queries', () => {
    it('health reports the database and mode', async () => {
      const { health } = await data(
        url,
        '{ health { ok database mode version uptimeSeconds migrationsApplied } }',
      );
      expect(health).toMatchObject({
        ok: true,
        database: 'ok',
        mode: kind === 'postgres' ? 'postgres' : 'embedded',
        migrationsApplied: true,
      });
      expect(health.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(health.uptimeSeconds).toBeGreaterThanOrEqual(0);
    });

    it('agents lists the eight built-in agents, idle, with upper-case statuses', async () => {
      const { agents } = await data(
        url,
        '{ agents { id name role description status lastActivityAt errorMessage registeredAt actions { name description inputSchema outputSchema } actionNames } }',
      );
      expect(agents.map((agent: { id: string }) => agent.id)).toEqual(BUILT_IN);
      for (const agent of agents) {
        expect(agent.status).toBe('IDLE');
        expect(agent.name).not.toBe('');
        expect(agent.role).not.toBe('');
        expect(agent.registeredAt).toMatch(ISO);
        expect(agent.errorMessage).toBeNull();
        const names = agent.actions.map((action: { name: string }) => action.name);
        expect(names).toEqual(expect.arrayContaining(['ping', 'wait', 'fail']));
        expect(names).toEqual([...names].sort());
        expect(agent.actionNames).toEqual(names);
        const wait = agent.actions.find((action: { name: string }) => action.name === 'wait');
        expect(wait.description).toContain('progress');
        expect(wait.inputSchema.anyOf[0].properties.ms).toMatchObject({ type: 'integer', default: 1000 });
        expect(wait.outputSchema).toMatchObject({ type: 'object', required: ['waitedMs', 'steps'] });
      }
    });

    it('agent(id) finds one agent, and answers null for an unknown one', async () => {
      const { marketer, nobody } = await data(
        url,
        '{ marketer: agent(id: "marketer") { id role status } nobody: agent(id: "nobody") { id } }',
      );
      expect(marketer).toMatchObject({ id: 'marketer', status: 'IDLE' });
      expect(nobody).toBeNull();
    });
  });

  describe('tasks', () => {
    it('executeTask with wait runs ping to SUCCEEDED with its result', async () => {
      const { executeTask } = await data(url, EXECUTE, {
        input: {
          agentId: 'analyst',
          action: 'ping',
          input: { hello: 'world' },
          wait: true,
          timeoutMs: 10_000,
        },
      });
      expect(executeTask).toMatchObject({
        agent: { id: 'analyst' },
        action: 'ping',
        input: { hello: 'world' },
        status: 'SUCCEEDED',
        result: { pong: true },
        error: null,
        attempts: 1,
        maxAttempts: 1,
        cancelRequestedAt: null,
      });
      expect(executeTask.id).toMatch(UUID);
      expect(executeTask.finishedAt).toMatch(ISO);
      expect(executeTask.durationMs).toBeGreaterThanOrEqual(0);

      const { task } = await data(url, `query($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`, {
        id: executeTask.id,
      });
      expect(task).toEqual(executeTask);
    });

    it('executeTask without wait answers at once with the queued task; idempotencyKey dedupes', async () => {
      const input = { agentId: 'planner', action: 'ping', idempotencyKey: `key-${kind}` };
      const first = (await data(url, EXECUTE, { input })).executeTask;
      expect(['QUEUED', 'RUNNING', 'SUCCEEDED']).toContain(first.status);
      const again = (await data(url, EXECUTE, { input })).executeTask;
      expect(again.id).toBe(first.id);
    });

    it('a failing action retries, reports its error and writes an error log', async () => {
      const { executeTask: failed } = await data(url, EXECUTE, {
        input: {
          agentId: 'tester',
          action: 'fail',
          input: { message: 'boom', times: 5 },
          wait: true,
          timeoutMs: 10_000,
        },
      });
      expect(failed).toMatchObject({
        status: 'FAILED',
        attempts: 1,
        result: null,
        error: { message: 'boom', code: 'DIAGNOSTIC_FAILURE', retryable: true },
      });

      const { executeTask: retried } = await data(url, EXECUTE, {
        input: {
          agentId: 'tester',
          action: 'fail',
          input: { message: 'once', times: 1 },
          maxAttempts: 2,
          wait: true,
          timeoutMs: 10_000,
        },
      });
      expect(retried).toMatchObject({
        status: 'SUCCEEDED',
        attempts: 2,
        result: { attempt: 2, failedAttempts: 1 },
      });

      const logs = await eventually(async () => {
        const { logs } = await data(
          url,
          `query($taskId: ID!) { logs(taskId: $taskId, levels: [ERROR]) {
              edges { cursor node { id agentId taskId level message context createdAt } }
              pageInfo { hasNextPage endCursor } } }`,
          { taskId: failed.id },
        );
        return logs.edges.length > 0 ? logs : undefined;
      });
      expect(logs.edges[0].node).toMatchObject({
        agentId: 'tester',
        taskId: failed.id,
        level: 'ERROR',
        message: expect.stringContaining('boom'),
      });
      expect(logs.edges[0].node.createdAt).toMatch(ISO);
      expect(logs.pageInfo.endCursor).toBe(logs.edges.at(-1).cursor);

      // Level, agent and time filters.
      const { infos, others, future } = await data(
        url,
        `query($from: DateTime) {
           infos: logs(agentId: "tester", levels: [DEBUG]) { edges { node { id } } }
           others: logs(agentId: "marketer") { edges { node { id } } }
           future: logs(agentId: "tester", from: $from) { edges { node { id } } } }`,
        { from: new Date(Date.now() + 3_600_000).toISOString() },
      );
      expect(infos.edges).toEqual([]);
      expect(others.edges).toEqual([]);
      expect(future.edges).toEqual([]);
    });

    it('cancelTask cancels a running wait task', async () => {
      const { executeTask: task } = await data(url, EXECUTE, {
        input: { agentId: 'developer', action: 'wait', input: { ms: 20_000, steps: 100 } },
      });
      await eventually(async () => {
        const { task: current } = await data(url, 'query($id: ID!) { task(id: $id) { status } }', {
          id: task.id,
        });
        return current.status === 'RUNNING' ? true : undefined;
      });
      const { cancelTask } = await data(
        url,
        'mutation($id: ID!) { cancelTask(id: $id) { id status cancelRequestedAt } }',
        {
          id: task.id,
        },
      );
      expect(cancelTask.id).toBe(task.id);
      expect(cancelTask.cancelRequestedAt).toMatch(ISO);
      const final = await eventually(async () => {
        const { task: current } = await data(url, 'query($id: ID!) { task(id: $id) { status finishedAt } }', {
          id: task.id,
        });
        return current.status === 'CANCELLED' ? current : undefined;
      });
      expect(final.finishedAt).toMatch(ISO);
    });

    it('task(id) is null for an unknown UUID', async () => {
      const { task } = await data(url, '{ task(id: "00000000-0000-4000-8000-000000000000") { id } }');
      expect(task).toBeNull();
    });

    it('tasks pages newest first with opaque cursors, filters and totalCount', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const { executeTask } = await data(url, EXECUTE, {
          input: { agentId: 'security', action: 'ping', input: { i }, wait: true, timeoutMs: 10_000 },
        });
        ids.push(executeTask.id);
      }
      const PAGE = /* GraphQL */ `
        query ($after: String) {
          tasks(agentId: "security", first: 2, after: $after) {
            totalCount
            edges {
              cursor
              node {
                id
                agent {
                  id
                }
              }
            }
            pageInfo {
              hasNextPage
              hasPreviousPage
              startCursor
              endCursor
            }
          }
        }
      `;
      const seen: string[] = [];
      let after: string | null = null;
      for (let page = 0; page < 3; page++) {
        const { tasks }: AnyData = await data(url, PAGE, { after });
        expect(tasks.totalCount).toBe(5);
        expect(tasks.edges.length).toBe(page < 2 ? 2 : 1);
        expect(tasks.pageInfo.hasNextPage).toBe(page < 2);
        expect(tasks.pageInfo.startCursor).toBe(tasks.edges[0].cursor);
        expect(tasks.pageInfo.endCursor).toBe(tasks.edges.at(-1).cursor);
        for (const edge of tasks.edges) {
          expect(edge.node.agent.id).toBe('security');
          expect(edge.cursor).not.toContain(edge.node.id);
          seen.push(edge.node.id);
        }
        after = tasks.pageInfo.endCursor;
      }
      expect(seen).toEqual([...ids].reverse());

      const { succeeded, queued, all } = await data(
        url,
        `{ succeeded: tasks(agentId: "security", status: [SUCCEEDED]) { totalCount }
           queued: tasks(agentId: "security", status: [QUEUED, RUNNING]) { totalCount edges { node { id } } }
           all: tasks(first: 500) { totalCount edges { node { id } } } }`,
      );
      expect(succeeded.totalCount).toBe(5);
      expect(queued).toEqual({ totalCount: 0, edges: [] });
      expect(all.totalCount).toBe(all.edges.length);
      expect(all.totalCount).toBeGreaterThanOrEqual(5);
    });

    it('Agent.recentTasks and Agent.metrics reflect the runs, with a time range', async () => {
      const future = new Date(Date.now() + 3_600_000).toISOString();
      const { agent } = await data(
        url,
        `query($future: DateTime) { agent(id: "security") {
            recentTasks(first: 3) { id status agent { id } }
            metrics { totalRuns succeeded failed avgDurationMs successRate errorRate uptimeSeconds }
            later: metrics(from: $future) { totalRuns successRate avgDurationMs } } }`,
        { future },
      );
      expect(agent.recentTasks).toHaveLength(3);
      expect(agent.recentTasks.every((task: { status: string }) => task.status === 'SUCCEEDED')).toBe(true);
      expect(agent.metrics).toMatchObject({
        totalRuns: 5,
        succeeded: 5,
        failed: 0,
        successRate: 1,
        errorRate: 0,
      });
      expect(agent.metrics.avgDurationMs).toBeGreaterThanOrEqual(0);
      expect(agent.metrics.uptimeSeconds).toBeGreaterThan(0);
      expect(agent.later).toEqual({ totalRuns: 0, successRate: 0, avgDurationMs: null });

      const tester = await data(
        url,
        '{ agent(id: "tester") { metrics { totalRuns failed succeeded errorRate } } }',
      );
      expect(tester.agent.metrics).toEqual({ totalRuns: 2, failed: 1, succeeded: 1, errorRate: 0.5 });
    });
  });

  describe('expected failures carry their code', () => {
    it('NOT_FOUND, CONFLICT and BAD_USER_INPUT from mutations', async () => {
      const { executeTask: done } = await data(url, EXECUTE, {
        input: { agentId: 'qa', action: 'ping', wait: true, timeoutMs: 10_000 },
      });
      const cases: [string, Record<string, unknown> | undefined, string][] = [
        [
          'mutation { executeTask(input: { agentId: "ghost", action: "ping" }) { id } }',
          undefined,
          'NOT_FOUND',
        ],
        ['mutation($id: ID!) { cancelTask(id: $id) { id } }', { id: done.id }, 'CONFLICT'],
        [
          'mutation { cancelTask(id: "00000000-0000-4000-8000-000000000000") { id } }',
          undefined,
          'NOT_FOUND',
        ],
        ['mutation { updateAgentState(agentId: "ghost", data: {}) { version } }', undefined, 'NOT_FOUND'],
        ['mutation { resetAgentState(agentId: "ghost") }', undefined, 'NOT_FOUND'],
        [
          'mutation { registerAgent(input: { id: "x", name: "", role: "r" }) { id } }',
          undefined,
          'BAD_USER_INPUT',
        ],
        [
          'mutation { executeTask(input: { agentId: "qa", action: "no-such-action" }) { id } }',
          undefined,
          'BAD_USER_INPUT',
        ],
        [
          'mutation { executeTask(input: { agentId: "qa", action: "ping", maxAttempts: 0 }) { id } }',
          undefined,
          'BAD_USER_INPUT',
        ],
        [
          '{ agent(id: "qa") { metrics(from: "2030-01-01T00:00:00Z", to: "2020-01-01T00:00:00Z") { totalRuns } } }',
          undefined,
          'BAD_USER_INPUT',
        ],
      ];
      for (const [query, variables, code] of cases) {
        const response = await gql(url, query, variables);
        expect(response.status, query).toBe(200);
        expect(errorCodes(response), query).toEqual([code]);
        expect(response.body.errors![0]!.message, query).not.toBe('Unexpected error.');
      }
      const invalid = await gql(
        url,
        'mutation { registerAgent(input: { id: "x", name: "", role: "r" }) { id } }',
      );
      expect(invalid.body.errors![0]!.extensions?.issues).toEqual([
        { path: 'name', message: expect.any(String) },
      ]);
    });
  });

  describe('events', () => {
    it('pages the log in order, filtered by agent, task and type, resuming after a cursor', async () => {
      const { executeTask } = await data(url, EXECUTE, {
        input: { agentId: 'qa', action: 'ping', wait: true, timeoutMs: 10_000 },
      });
      const { events } = await data(
        url,
        `query($taskId: ID!) { events(taskId: $taskId) {
            edges { cursor node { id cursor type agentId taskId userId payload createdAt } }
            pageInfo { hasNextPage endCursor } } }`,
        { taskId: executeTask.id },
      );
      const types = events.edges.map((edge: { node: { type: string } }) => edge.node.type);
      expect(types).toEqual(['task_queued', 'task_started', 'task_completed']);
      for (const edge of events.edges) {
        expect(edge.cursor).toBe(edge.node.cursor);
        expect(edge.node).toMatchObject({ agentId: 'qa', taskId: executeTask.id });
        expect(edge.node.createdAt).toMatch(ISO);
      }
      expect(events.pageInfo).toEqual({ hasNextPage: false, endCursor: events.edges[2].cursor });

      const resumed = await data(
        url,
        'query($taskId: ID!, $after: String) { events(taskId: $taskId, first: 1, after: $after) { edges { node { type } } pageInfo { hasNextPage } } }',
        { taskId: executeTask.id, after: events.edges[0].cursor },
      );
      expect(resumed.events.edges).toEqual([{ node: { type: 'task_started' } }]);
      expect(resumed.events.pageInfo.hasNextPage).toBe(true);

      const { completed } = await data(
        url,
        '{ completed: events(agentId: "qa", types: ["task_completed"]) { edges { node { type agentId } } } }',
      );
      expect(completed.edges.length).toBeGreaterThanOrEqual(1);
      for (const edge of completed.edges)
        expect(edge.node).toEqual({ type: 'task_completed', agentId: 'qa' });
    });
  });

  describe('agents and state mutations', () => {
    it('registerAgent adds an agent; unregisterAgent stops it and keeps its history', async () => {
      const { registerAgent } = await data(
        url,
        `mutation { registerAgent(input: { id: "writer", name: "Writer", role: "content", description: "Writes copy" }) {
            id name role description status registeredAt actions { name } } }`,
      );
      expect(registerAgent).toMatchObject({
        id: 'writer',
        name: 'Writer',
        role: 'content',
        description: 'Writes copy',
        status: 'IDLE',
      });
      expect(registerAgent.actions).toEqual(expect.arrayContaining([{ name: 'ping' }]));
      await data(url, EXECUTE, {
        input: { agentId: 'writer', action: 'ping', wait: true, timeoutMs: 10_000 },
      });

      const { unregisterAgent } = await data(url, 'mutation { unregisterAgent(id: "writer") { id status } }');
      expect(unregisterAgent).toEqual({ id: 'writer', status: 'STOPPED' });

      const { agent, events } = await data(
        url,
        `{ agent(id: "writer") { status recentTasks { status } }
           events(agentId: "writer", types: ["agent_registered", "agent_unregistered"]) { edges { node { type } } } }`,
      );
      expect(agent).toEqual({ status: 'STOPPED', recentTasks: [{ status: 'SUCCEEDED' }] });
      expect(events.edges.map((edge: { node: { type: string } }) => edge.node.type)).toEqual([
        'agent_registered',
        'agent_unregistered',
      ]);

      const refused = await gql(url, EXECUTE, { input: { agentId: 'writer', action: 'ping' } });
      expect(errorCodes(refused)).toEqual(['CONFLICT']);
      const unknown = await gql(url, 'mutation { unregisterAgent(id: "ghost") { id } }');
      expect(errorCodes(unknown)).toEqual(['NOT_FOUND']);
    });

    it('registerAgent takes maxConcurrency (1-10000) and the agent shows it', async () => {
      const { registerAgent } = await data(
        url,
        'mutation { registerAgent(input: { id: "capped", name: "Capped", role: "qa", maxConcurrency: 2 }) { id maxConcurrency } }',
      );
      expect(registerAgent).toEqual({ id: 'capped', maxConcurrency: 2 });
      const refused = await gql(
        url,
        'mutation { registerAgent(input: { id: "capped", name: "Capped", role: "qa", maxConcurrency: 0 }) { id } }',
      );
      expect(errorCodes(refused)).toEqual(['BAD_USER_INPUT']);
      const { agent } = await data(url, '{ agent(id: "capped") { maxConcurrency } }');
      expect(agent).toEqual({ maxConcurrency: 2 });
    });

    it('updateAgentState versions the data with optimistic concurrency; resetAgentState clears it', async () => {
      const UPDATE = /* GraphQL */ `
        mutation ($data: JSON!, $expected: Int) {
          updateAgentState(agentId: "engineer", data: $data, expectedVersion: $expected) {
            agentId
            version
            data
            updatedAt
          }
        }
      `;
      const first = (await data(url, UPDATE, { data: { step: 1 }, expected: 0 })).updateAgentState;
      expect(first).toMatchObject({ agentId: 'engineer', version: 1, data: { step: 1 } });
      expect(first.updatedAt).toMatch(ISO);
      const second = (await data(url, UPDATE, { data: { step: 2, nested: { ok: true } }, expected: 1 }))
        .updateAgentState;
      expect(second).toMatchObject({ version: 2, data: { step: 2, nested: { ok: true } } });

      const stale = await gql(url, UPDATE, { data: { step: 3 }, expected: 1 });
      expect(errorCodes(stale)).toEqual(['CONFLICT']);
      const notObject = await gql(url, UPDATE, { data: [1, 2, 3] });
      expect(errorCodes(notObject)).toEqual(['BAD_USER_INPUT']);

      const { agent } = await data(url, '{ agent(id: "engineer") { state { version data } } }');
      expect(agent.state).toEqual({ version: 2, data: { step: 2, nested: { ok: true } } });

      expect((await data(url, 'mutation { resetAgentState(agentId: "engineer") }')).resetAgentState).toBe(
        true,
      );
      expect((await data(url, 'mutation { resetAgentState(agentId: "engineer") }')).resetAgentState).toBe(
        false,
      );
      const after = await data(url, '{ agent(id: "engineer") { state { version } } }');
      expect(after.agent.state).toBeNull();

      const { events } = await data(
        url,
        '{ events(agentId: "engineer", types: ["state_updated", "state_reset"]) { edges { node { type } } } }',
      );
      expect(events.edges.map((edge: { node: { type: string } }) => edge.node.type)).toEqual([
        'state_updated',
        'state_updated',
        'state_reset',
      ]);
    });
  });
});
