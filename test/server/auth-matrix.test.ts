/**
 * Every Query, Mutation and Subscription field × every kind of caller × every transport (HTTP,
 * WebSocket through graphql-ws, SSE): each cell is allowed, UNAUTHENTICATED or FORBIDDEN exactly as
 * the roles table of docs/security.md says. Tokens are signed here: HS256 with the shared secret,
 * ES256 with a key the test publishes as a JWKS over HTTP on 127.0.0.1.
 */
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { hasRole, type Role } from '../../src/auth/roles.js';
import { silentLogger } from '../../src/logger.js';
import { schema } from '../../src/graphql/schema.js';
import { authEnv, hs256Token, startJwksServer, unsignedToken, type JwksServer } from '../support/auth.js';
import { gql, startTestServer, type TestServer } from './harness.js';

type Outcome = 'ok' | 'UNAUTHENTICATED' | 'FORBIDDEN';
type Transport = 'http' | 'ws' | 'sse';

interface Credential {
  name: string;
  authorization?: string;
  /** The user id the server sees (for tasks this caller owns). */
  userId?: string;
  /** null: refused before any role applies (none, or invalid credentials). */
  role: Role | null;
}

/** A task nobody runs (due in a day), so it stays cancellable. */
const LATER = () => new Date(Date.now() + 86_400_000);

interface Operation {
  field: string;
  kind: 'query' | 'mutation' | 'subscription';
  /** Who may run it (the caller is signed in with `role`). */
  allows: (role: Role) => boolean;
  document: string;
  variables?: (caller: Credential) => Promise<Record<string, unknown>>;
  /** Live-only subscriptions: makes something happen until the first item arrives. */
  pulse?: () => Promise<unknown>;
}

const atLeast = (min: Role) => (role: Role) => hasRole({ kind: 'user', id: 'x', role, grants: [] }, min);
/** Needs tasks:all: among these callers only the admins hold it. */
const allTasks = atLeast('admin');

let server: TestServer;
let jwks: JwksServer;
let agentCounter = 0;

const ownTask = async (caller: Credential) => {
  const task = await server.runtime.executeTask({
    agentId: 'analyst',
    action: 'ping',
    runAt: LATER(),
    userId: caller.userId,
  });
  return task.id;
};
/** A finished task of the caller's that streamed some output. */
const ownTaskWithOutput = async (caller: Credential) => {
  server.runtime.defineActions('analyst', {
    matrix_output: (_input, ctx) => {
      ctx.output('hello');
      return null;
    },
  });
  const task = await server.runtime.executeTask({
    agentId: 'analyst',
    action: 'matrix_output',
    userId: caller.userId,
    wait: true,
  });
  return task.id;
};
const ownRun = async (caller: Credential) => {
  const run = await server.runtime.executeWorkflow(
    { definition: { steps: [{ id: 'only', agentId: 'analyst', action: 'ping' }] } },
    { userId: caller.userId },
  );
  return run.id;
};
const freshAgent = async () => {
  agentCounter += 1;
  const agent = await server.runtime.registerAgent({
    id: `matrix-${agentCounter}`,
    name: 'M',
    role: 'matrix',
  });
  return agent.id;
};

const OPERATIONS: Operation[] = [
  { field: 'health', kind: 'query', allows: atLeast('viewer'), document: '{ health { ok } }' },
  {
    field: 'agents',
    kind: 'query',
    allows: atLeast('viewer'),
    document: '{ agents { id recentTasks { id } } }',
  },
  {
    field: 'agent',
    kind: 'query',
    allows: atLeast('viewer'),
    document: '{ agent(id: "qa") { id state { version } metrics { totalRuns } } }',
  },
  {
    field: 'task',
    kind: 'query',
    allows: atLeast('viewer'),
    document: 'query($id: ID!) { task(id: $id) { id createdBy } }',
    variables: async (caller) => ({ id: await ownTask(caller) }),
  },
  {
    field: 'tasks',
    kind: 'query',
    allows: atLeast('viewer'),
    document: '{ tasks(first: 5) { totalCount edges { node { id } } } }',
  },
  {
    field: 'logs',
    kind: 'query',
    allows: atLeast('viewer'),
    document: 'query($id: ID!) { logs(taskId: $id) { edges { node { id } } } }',
    variables: async (caller) => ({ id: await ownTask(caller) }),
  },
  {
    field: 'logs (every task)',
    kind: 'query',
    allows: allTasks,
    document: '{ logs(first: 1) { edges { node { id } } } }',
  },
  {
    field: 'events',
    kind: 'query',
    allows: atLeast('viewer'),
    document: 'query($id: ID!) { events(taskId: $id) { edges { node { type userId } } } }',
    variables: async (caller) => ({ id: await ownTask(caller) }),
  },
  {
    field: 'events (every task)',
    kind: 'query',
    allows: allTasks,
    document: '{ events(first: 1) { edges { node { id } } } }',
  },
  {
    field: 'workflowRun',
    kind: 'query',
    allows: atLeast('viewer'),
    document: 'query($id: ID!) { workflowRun(id: $id) { id status progress steps { id status } } }',
    variables: async (caller) => ({ id: await ownRun(caller) }),
  },
  {
    field: 'workflowRuns',
    kind: 'query',
    allows: atLeast('viewer'),
    document: '{ workflowRuns(first: 5) { edges { node { id } } } }',
  },
  { field: 'workflows', kind: 'query', allows: atLeast('viewer'), document: '{ workflows { id } }' },
  { field: 'eventHead', kind: 'query', allows: atLeast('viewer'), document: '{ eventHead }' },
  { field: 'logHead', kind: 'query', allows: allTasks, document: '{ logHead }' },
  {
    field: 'metricSeries',
    kind: 'query',
    allows: atLeast('viewer'),
    document: '{ metricSeries(agentId: "qa", name: "task_duration_ms") { start count p95 } }',
  },
  {
    field: 'executeWorkflow',
    kind: 'mutation',
    allows: atLeast('operator'),
    document:
      'mutation { executeWorkflow(input: { definition: { steps: [{ id: "a", agentId: "planner", action: "ping" }] } }) { id } }',
  },
  {
    field: 'executeWorkflow (diagnostic wait)',
    kind: 'mutation',
    allows: atLeast('admin'),
    document:
      'mutation { executeWorkflow(input: { definition: { steps: [{ id: "a", agentId: "planner", action: "wait", input: { ms: 1 } }] } }) { id } }',
  },
  {
    field: 'cancelWorkflowRun',
    kind: 'mutation',
    allows: atLeast('operator'),
    document: 'mutation($id: ID!) { cancelWorkflowRun(id: $id) { status } }',
    variables: async (caller) => ({ id: await ownRun(caller) }),
  },
  { field: 'apiKeys', kind: 'query', allows: atLeast('admin'), document: '{ apiKeys { id name } }' },
  {
    field: 'executeTask',
    kind: 'mutation',
    allows: atLeast('operator'),
    document: 'mutation { executeTask(input: { agentId: "planner", action: "ping" }) { id createdBy } }',
  },
  {
    field: 'executeTask (diagnostic wait)',
    kind: 'mutation',
    allows: atLeast('admin'),
    document:
      'mutation { executeTask(input: { agentId: "planner", action: "wait", input: { ms: 1 } }) { id } }',
  },
  {
    field: 'cancelTask',
    kind: 'mutation',
    allows: atLeast('operator'),
    document: 'mutation($id: ID!) { cancelTask(id: $id) { status } }',
    variables: async (caller) => ({ id: await ownTask(caller) }),
  },
  {
    field: 'signalTask',
    kind: 'mutation',
    allows: atLeast('operator'),
    document:
      'mutation($id: ID!) { signalTask(id: $id, name: "approval", payload: { ok: true }) { status } }',
    variables: async (caller) => ({ id: await ownTask(caller) }),
  },
  {
    field: 'registerAgent',
    kind: 'mutation',
    allows: atLeast('admin'),
    document: 'mutation($id: ID!) { registerAgent(input: { id: $id, name: "R", role: "r" }) { id } }',
    variables: async () => ({ id: `matrix-new-${(agentCounter += 1)}` }),
  },
  {
    field: 'unregisterAgent',
    kind: 'mutation',
    allows: atLeast('admin'),
    document: 'mutation($id: ID!) { unregisterAgent(id: $id) { status } }',
    variables: async () => ({ id: await freshAgent() }),
  },
  {
    field: 'updateAgentState',
    kind: 'mutation',
    allows: atLeast('operator'),
    document: 'mutation { updateAgentState(agentId: "engineer", data: { n: 1 }) { version } }',
  },
  {
    field: 'resetAgentState',
    kind: 'mutation',
    allows: atLeast('operator'),
    document: 'mutation { resetAgentState(agentId: "engineer") }',
  },
  {
    field: 'createApiKey',
    kind: 'mutation',
    allows: atLeast('admin'),
    document: 'mutation { createApiKey(role: VIEWER, name: "matrix") { secret apiKey { id } } }',
  },
  {
    field: 'revokeApiKey',
    kind: 'mutation',
    allows: atLeast('admin'),
    document: 'mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }',
    variables: async () => {
      const created = await new ApiKeys(server.runtime.apiKeys, silentLogger()).create(
        { role: 'viewer', name: 'to revoke' },
        null,
      );
      return { id: created.apiKey.id };
    },
  },
  {
    field: 'taskUpdated',
    kind: 'subscription',
    allows: atLeast('viewer'),
    document: 'subscription($id: ID!) { taskUpdated(id: $id) { id status } }',
    variables: async (caller) => ({ id: await ownTask(caller) }),
  },
  {
    field: 'taskEvents',
    kind: 'subscription',
    allows: atLeast('viewer'),
    document: 'subscription($id: ID!) { taskEvents(taskId: $id) { type } }',
    variables: async (caller) => ({ id: await ownTask(caller) }),
  },
  {
    field: 'taskOutput',
    kind: 'subscription',
    allows: atLeast('viewer'),
    document: 'subscription($id: ID!) { taskOutput(taskId: $id) { offset text } }',
    variables: async (caller) => ({ id: await ownTaskWithOutput(caller) }),
  },
  {
    field: 'workflowRunEvents',
    kind: 'subscription',
    allows: atLeast('viewer'),
    document: 'subscription($id: ID!) { workflowRunEvents(id: $id) { type workflowRunId } }',
    variables: async (caller) => ({ id: await ownRun(caller) }),
  },
  {
    field: 'workflowRunUpdated',
    kind: 'subscription',
    allows: atLeast('viewer'),
    document: 'subscription($id: ID!) { workflowRunUpdated(id: $id) { id status } }',
    variables: async (caller) => ({ id: await ownRun(caller) }),
  },
  {
    field: 'agentStatusChanged',
    kind: 'subscription',
    allows: atLeast('viewer'),
    document: 'subscription { agentStatusChanged { id } }',
    pulse: () => server.runtime.registerAgent({ id: 'matrix-pulse', name: 'P', role: 'pulse' }),
  },
  {
    field: 'logAdded',
    kind: 'subscription',
    allows: allTasks,
    document: 'subscription { logAdded { id } }',
    pulse: () =>
      server.runtime.executeTask({ agentId: 'qa', action: 'fail', input: { message: 'pulse', times: 1 } }),
  },
  {
    field: 'events (subscription)',
    kind: 'subscription',
    allows: allTasks,
    document: 'subscription { events { type } }',
    pulse: () => server.runtime.registerAgent({ id: 'matrix-pulse', name: 'P', role: 'pulse' }),
  },
];

const expected = (operation: Operation, caller: Credential): Outcome =>
  caller.role === null ? 'UNAUTHENTICATED' : operation.allows(caller.role) ? 'ok' : 'FORBIDDEN';

const outcomeOf = (
  errors: readonly { extensions?: Record<string, unknown> }[] | undefined,
): Outcome | string => (errors?.length ? String(errors[0]!.extensions?.code) : 'ok');

async function overHttp(operation: Operation, caller: Credential, variables: Record<string, unknown>) {
  const headers: Record<string, string> = caller.authorization ? { authorization: caller.authorization } : {};
  const response = await gql(server.url, operation.document, variables, headers);
  return outcomeOf(response.body.errors);
}

/** The first result of a subscription (or query) over graphql-ws, pulsing until it comes. */
async function overWebSocket(operation: Operation, caller: Credential, variables: Record<string, unknown>) {
  const client = createClient({
    url: server.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: caller.authorization ? { authorization: caller.authorization } : {},
  });
  try {
    return await untilFirst(operation, (settle) =>
      client.subscribe(
        { query: operation.document, variables },
        {
          next: (result) => settle(outcomeOf(result.errors)),
          error: (error) => {
            const code = (error as { code?: number }).code;
            // The socket was refused at connection_init: 4403 Forbidden.
            settle(code === 4403 ? 'UNAUTHENTICATED' : `error ${JSON.stringify(error)}`);
          },
          complete: () => settle('completed without a result'),
        },
      ),
    );
  } finally {
    await client.dispose();
  }
}

/** The first `data:` of an SSE answer, pulsing until it comes. */
async function overSse(operation: Operation, caller: Credential, variables: Record<string, unknown>) {
  const abort = new AbortController();
  return untilFirst(operation, (settle) => {
    void (async () => {
      const response = await fetch(server.url, {
        method: 'POST',
        signal: abort.signal,
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          ...(caller.authorization ? { authorization: caller.authorization } : {}),
        },
        body: JSON.stringify({ query: operation.document, variables }),
      });
      const decoder = new TextDecoder();
      let text = '';
      const reader = response.body!.getReader();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        text += decoder.decode(chunk.value, { stream: true });
        const match = /^data: (\{.*\})$/m.exec(text);
        if (match) return settle(outcomeOf((JSON.parse(match[1]!) as { errors?: [] }).errors));
      }
      settle('ended without a result');
    })().catch((error: unknown) => {
      if (!abort.signal.aborted) settle(`error ${String(error)}`);
    });
    return () => abort.abort();
  });
}

/** Runs `start` until it settles; meanwhile pulses the operation's trigger (live-only streams). */
async function untilFirst(
  operation: Operation,
  start: (settle: (outcome: string) => void) => () => void,
): Promise<string> {
  let settled: string | undefined;
  let stop = () => undefined as void;
  const outcome = new Promise<string>((resolve) => {
    stop = start((value) => {
      if (settled === undefined) {
        settled = value;
        resolve(value);
      }
    });
  });
  const pulsing = (async () => {
    for (let round = 0; operation.pulse && round < 200 && settled === undefined; round += 1) {
      await operation.pulse();
      await Promise.race([outcome, new Promise((resolve) => setTimeout(resolve, 100))]);
    }
  })();
  const result = await outcome;
  stop();
  await pulsing;
  return result;
}

const TRANSPORTS: Record<Transport, typeof overHttp> = { http: overHttp, ws: overWebSocket, sse: overSse };

describe('who may run what: every operation × caller × transport [pglite]', () => {
  const callers: Credential[] = [];

  beforeAll(async () => {
    jwks = await startJwksServer();
    server = await startTestServer('pglite', { env: authEnv(jwks) });
    const apiKey = await new ApiKeys(server.runtime.apiKeys, silentLogger()).create(
      { role: 'operator', name: 'matrix operator key' },
      null,
    );
    const bearer = (token: string) => `Bearer ${token}`;
    callers.push(
      { name: 'anonymous', role: null },
      {
        name: 'viewer (HS256)',
        userId: 'u-viewer',
        role: 'viewer',
        authorization: bearer(await hs256Token({ sub: 'u-viewer' })),
      },
      {
        name: 'operator (ES256)',
        userId: 'u-operator',
        role: 'operator',
        authorization: bearer(await jwks.es256Token({ sub: 'u-operator', role: 'operator' })),
      },
      {
        name: 'admin (ES256)',
        userId: 'u-admin',
        role: 'admin',
        authorization: bearer(await jwks.es256Token({ sub: 'u-admin', role: 'admin' })),
      },
      {
        name: 'API key (operator)',
        userId: `apiKey:${apiKey.apiKey.id}`,
        role: 'operator',
        authorization: bearer(apiKey.secret),
      },
      {
        name: 'expired token',
        role: null,
        authorization: bearer(await hs256Token({ sub: 'u-admin', role: 'admin', expiresIn: -3600 })),
      },
      {
        name: 'wrong signature',
        role: null,
        authorization: bearer(
          await hs256Token({ sub: 'u-admin', role: 'admin' }, 'another-secret-of-at-least-32-characters!'),
        ),
      },
      {
        name: 'wrong audience',
        role: null,
        authorization: bearer(await jwks.es256Token({ sub: 'u-admin', role: 'admin', audience: 'anon' })),
      },
      {
        name: 'alg none',
        role: null,
        authorization: bearer(unsignedToken({ sub: 'u-admin', role: 'admin' })),
      },
      {
        name: 'alg confusion (HS256 keyed with the public key)',
        role: null,
        authorization: bearer(await jwks.confusedToken({ sub: 'u-admin', role: 'admin' })),
      },
    );
  });

  afterAll(async () => {
    await server?.close();
    await jwks?.close();
  });

  it('covers every root field of the schema', async () => {
    const fields = Object.values({
      query: schema.getQueryType()!,
      mutation: schema.getMutationType()!,
      subscription: schema.getSubscriptionType()!,
    }).flatMap((type) => Object.values(type.getFields()).map((field) => `${type.name}.${field.name}`));
    const covered = new Set(
      OPERATIONS.map((operation) => {
        const root =
          operation.kind === 'query' ? 'Query' : operation.kind === 'mutation' ? 'Mutation' : 'Subscription';
        return `${root}.${operation.field.split(' ')[0]}`;
      }),
    );
    expect(fields.filter((field) => !covered.has(field))).toEqual([]);
    // And every one declares its scope in the schema (not an `if` in a resolver).
    const unscoped = Object.values({
      q: schema.getQueryType()!,
      m: schema.getMutationType()!,
      s: schema.getSubscriptionType()!,
    }).flatMap((type) =>
      Object.values(type.getFields())
        .filter(
          (field) =>
            !(field.extensions as { pothosOptions?: { authScopes?: unknown } }).pothosOptions?.authScopes,
        )
        .map((field) => `${type.name}.${field.name}`),
    );
    expect(unscoped).toEqual([]);
  });

  it('answers each cell as the roles table says', async () => {
    const mismatches: string[] = [];
    let cells = 0;
    for (const operation of OPERATIONS) {
      const transports: Transport[] =
        operation.kind === 'subscription' ? ['ws', 'sse'] : ['http', 'ws', 'sse'];
      for (const caller of callers) {
        for (const transport of transports) {
          const variables = (await operation.variables?.(caller)) ?? {};
          const outcome = await TRANSPORTS[transport](operation, caller, variables);
          cells += 1;
          const want = expected(operation, caller);
          if (outcome !== want)
            mismatches.push(`${operation.field} × ${caller.name} × ${transport}: ${outcome}, want ${want}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
    console.info(
      `auth matrix: ${cells} cells (${OPERATIONS.length} operations × ${callers.length} callers × transports)`,
    );
  }, 600_000);

  it('lets a caller with operator rights run ping (admin-only diagnostics aside)', async () => {
    const operator = callers.find((caller) => caller.name.startsWith('operator'))!;
    const response = await gql(
      server.url,
      'mutation { executeTask(input: { agentId: "qa", action: "ping", wait: true }) { status createdBy } }',
      {},
      { authorization: operator.authorization! },
    );
    expect(response.body.data).toEqual({ executeTask: { status: 'SUCCEEDED', createdBy: 'u-operator' } });
  });
});
