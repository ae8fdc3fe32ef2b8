/**
 * The live subscriptions of the api-contract over graphql-ws and SSE: progress streams, resume
 * after a disconnect, server-side filters, and many subscribers on one process.
 */
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { describeEachDatabase } from '../support/databases.js';
import { steppedAction } from '../support/stepped-action.js';
import { data, errorCodes, gql, startTestServer, type AnyData, type TestServer } from './harness.js';

/** Ceiling for a subscription to see what it waits for: generous, for a loaded machine. */
const SUBSCRIPTION_CEILING_MS = 80_000;

const wsClient = (server: TestServer) =>
  createClient({
    url: server.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
  });

/** A client whose socket is open and acknowledged (connection_ack) when this resolves. */
async function connectedWsClient(server: TestServer): Promise<Client> {
  let connected!: () => void;
  const acknowledged = new Promise<void>((resolve) => (connected = resolve));
  const client = createClient({
    url: server.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    on: { connected: () => connected() },
  });
  await acknowledged;
  return client;
}

/**
 * Writes version `n` of an agent's state as a careful client does: on UNAVAILABLE (the database
 * did not answer: on a loaded machine, the Supabase doubles' HTTP hop can drop) it retries, and the
 * expected version keeps a retry of a write that did land from writing it twice.
 */
async function writeVersion(server: TestServer, agentId: string, n: number): Promise<void> {
  const mutation = `mutation { updateAgentState(agentId: "${agentId}", data: { n: ${n} }, expectedVersion: ${n - 1}) { version } }`;
  for (let retried = false; ; retried = true) {
    const response = await gql(server.url, mutation);
    const [code] = errorCodes(response);
    if (code === undefined) return;
    if (code === 'CONFLICT' && retried) {
      const { agent } = await data(server.url, `{ agent(id: "${agentId}") { state { version } } }`);
      if (agent.state.version === n) return;
    }
    if (code !== 'UNAVAILABLE') throw new Error(`version ${n} not written: ${JSON.stringify(response.body)}`);
  }
}

/** Subscribes and collects `data[field]` of each result until `enough` says stop; then unsubscribes. */
function subscribe(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  field: string,
  enough: (items: AnyData[]) => boolean = () => false,
) {
  const items: AnyData[] = [];
  let finished = false;
  let ready!: () => void;
  let unsubscribe = () => undefined as void;
  const done = new Promise<AnyData[]>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out with ${items.length} items`)),
      SUBSCRIPTION_CEILING_MS,
    );
    ready = () => {
      // Results already on their way after this are not part of what was asked for.
      finished = true;
      clearTimeout(timer);
      unsubscribe();
      resolve(items);
    };
    unsubscribe = client.subscribe<AnyData>(
      { query, variables },
      {
        next: (result) => {
          if (finished) return;
          if (result.errors)
            return reject(Object.assign(new Error('subscription error'), { errors: result.errors }));
          items.push(result.data![field]);
          if (enough(items)) ready();
        },
        error: (error) =>
          reject(error instanceof Error ? error : Object.assign(new Error('refused'), { errors: error })),
        complete: () => ready(),
      },
    );
  });
  return done;
}

const EVENTS =
  'subscription($agentId: ID, $types: [String!], $after: String) { events(agentId: $agentId, types: $types, after: $after) { id cursor type agentId payload } }';

describeEachDatabase('subscriptions', (kind) => {
  let server: TestServer;
  let client: Client;

  beforeAll(async () => {
    server = await startTestServer(kind);
    client = wsClient(server);
  });
  afterAll(async () => {
    await client?.dispose();
    await server?.close();
  });

  it('taskUpdated over graphql-ws shows increasing progress and the final status', async () => {
    const stepped = steppedAction(3);
    server.runtime.defineActions('analyst', { steppedWs: stepped.run });
    const { executeTask } = await data(
      server.url,
      'mutation { executeTask(input: { agentId: "analyst", action: "steppedWs" }) { id } }',
    );
    // Each step is released once the subscription has shown the previous one.
    const snapshots = await subscribe(
      client,
      'subscription($id: ID!) { taskUpdated(id: $id) { status progress } }',
      { id: executeTask.id },
      'taskUpdated',
      (items) => {
        stepped.advance(items.at(-1)?.progress);
        return false;
      },
    );
    const progress = snapshots.map((snapshot) => snapshot.progress ?? 0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect([...new Set(progress)].filter((value) => value > 0)).toEqual([1 / 3, 2 / 3, 1]);
    expect(snapshots.at(-1)).toEqual({ status: 'SUCCEEDED', progress: 1 });
  });

  it('taskUpdated over SSE shows the same', async () => {
    const { executeTask } = await data(
      server.url,
      'mutation { executeTask(input: { agentId: "analyst", action: "wait", input: { ms: 400, steps: 4 } }) { id } }',
    );
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        query: 'subscription($id: ID!) { taskUpdated(id: $id) { status progress } }',
        variables: { id: executeTask.id },
      }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const text = await response.text();
    const snapshots = [...text.matchAll(/^data: (\{.*\})$/gm)]
      .map((match) => JSON.parse(match[1]!) as AnyData)
      .filter((payload) => payload.data)
      .map((payload) => payload.data.taskUpdated);
    expect(snapshots.at(-1)).toEqual({ status: 'SUCCEEDED', progress: 1 });
    const progress = snapshots.map((snapshot) => snapshot.progress ?? 0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(text).toContain('event: complete');
  });

  it('resumes taskEvents after a disconnect with exactly the events not yet seen', async () => {
    const { executeTask } = await data(
      server.url,
      'mutation { executeTask(input: { agentId: "planner", action: "wait", input: { ms: 800, steps: 8 } }) { id } }',
    );
    const QUERY =
      'subscription($id: ID!, $after: String) { taskEvents(taskId: $id, after: $after) { id cursor type } }';
    const first = wsClient(server);
    const firstThree = await subscribe(
      first,
      QUERY,
      { id: executeTask.id },
      'taskEvents',
      (items) => items.length === 3,
    );
    await first.dispose();
    const second = wsClient(server);
    const rest = await subscribe(
      second,
      QUERY,
      { id: executeTask.id, after: firstThree[2].cursor },
      'taskEvents',
    );
    await second.dispose();
    const all = await subscribe(client, QUERY, { id: executeTask.id }, 'taskEvents');
    expect([...firstThree, ...rest].map((event) => event.id)).toEqual(all.map((event) => event.id));
    expect(all.at(-1).type).toBe('task_completed');
  });

  it('events with a cursor replay then go live; filters apply on the server', async () => {
    await data(
      server.url,
      'mutation { updateAgentState(agentId: "developer", data: { step: 1 }) { version } }',
    );
    const { events } = await data(
      server.url,
      '{ events(agentId: "developer", types: ["state_updated"]) { edges { cursor } } }',
    );
    const cursor = events.edges.at(-1).cursor;
    const collecting = subscribe(
      client,
      EVENTS,
      { agentId: 'developer', types: ['state_updated', 'state_reset'], after: cursor },
      'events',
      (items) => items.length === 3,
    );
    await data(
      server.url,
      'mutation { updateAgentState(agentId: "developer", data: { step: 2 }) { version } }',
    );
    await data(server.url, 'mutation { updateAgentState(agentId: "qa", data: { other: true }) { version } }');
    await data(
      server.url,
      'mutation { executeTask(input: { agentId: "developer", action: "ping", wait: true }) { id } }',
    );
    await data(server.url, 'mutation { resetAgentState(agentId: "developer") }');
    await data(
      server.url,
      'mutation { updateAgentState(agentId: "developer", data: { step: 3 }) { version } }',
    );
    const seen = await collecting;
    expect(seen.map((event) => [event.type, event.agentId, event.payload.version ?? null])).toEqual([
      ['state_updated', 'developer', 2],
      ['state_reset', 'developer', 2],
      ['state_updated', 'developer', 3],
    ]);
  });

  it('agentStatusChanged follows an agent from busy to idle', async () => {
    const collecting = subscribe(
      client,
      'subscription { agentStatusChanged(agentId: "tester") { id status runningTasks } }',
      {},
      'agentStatusChanged',
      (items) =>
        items.some(
          (agent, index) => agent.status === 'IDLE' && items.slice(0, index).some((a) => a.status === 'BUSY'),
        ),
    );
    // Live only: a subscription still being set up misses what happens meanwhile, so work until
    // it has seen a whole busy-to-idle cycle (a handful of tasks at most, even on a loaded machine).
    let settled = false;
    void collecting.finally(() => (settled = true)).catch(() => undefined);
    for (let round = 0; round < 10 && !settled; round += 1) {
      await data(
        server.url,
        'mutation { executeTask(input: { agentId: "tester", action: "wait", input: { ms: 300 }, wait: true }) { id } }',
      );
    }
    const seen = await collecting;
    expect(seen.every((agent) => agent.id === 'tester')).toBe(true);
    expect(seen.map((agent) => agent.status)).toContain('BUSY');
  });

  it('logAdded delivers the entries of the chosen agent and levels', async () => {
    const collecting = subscribe(
      client,
      'subscription { logAdded(agentId: "security", levels: [ERROR]) { level message agentId } }',
      {},
      'logAdded',
      (items) => items.length === 1,
    );
    // Live only: a subscription still being set up misses what happens meanwhile, so fail tasks
    // until it has seen an entry (one or two, even on a loaded machine).
    let settled = false;
    void collecting.finally(() => (settled = true)).catch(() => undefined);
    for (let round = 0; round < 10 && !settled; round += 1) {
      await data(
        server.url,
        'mutation { executeTask(input: { agentId: "security", action: "fail", input: { message: "audit failed", times: 1 }, wait: true }) { status } }',
      );
    }
    const [entry] = await collecting;
    expect(entry).toEqual({ level: 'ERROR', message: 'attempt 1 failed: audit failed', agentId: 'security' });
  });

  it('refuses bad subscription arguments with coded errors', async () => {
    await expect(subscribe(client, EVENTS, { types: ['not_a_type'] }, 'events')).rejects.toMatchObject({
      errors: [{ extensions: { code: 'BAD_USER_INPUT' } }],
    });
    await expect(subscribe(client, EVENTS, { after: 'garbage' }, 'events')).rejects.toMatchObject({
      errors: [{ extensions: { code: 'BAD_USER_INPUT' } }],
    });
    await expect(
      subscribe(
        client,
        'subscription { agentStatusChanged(agentId: "nobody") { id } }',
        {},
        'agentStatusChanged',
      ),
    ).rejects.toMatchObject({ errors: [{ extensions: { code: 'NOT_FOUND' } }] });
    await expect(
      subscribe(
        client,
        'subscription { taskUpdated(id: "00000000-0000-4000-8000-000000000000", throttleMs: -1) { id } }',
        {},
        'taskUpdated',
      ),
    ).rejects.toMatchObject({
      errors: [{ extensions: { code: expect.stringMatching(/NOT_FOUND|BAD_USER_INPUT/) } }],
    });
  });

  it('closes a socket that never sends connection_init (4408) and one without the graphql-ws subprotocol (4406)', async () => {
    const silent = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const started = Date.now();
    const code = await new Promise<number>((resolve) =>
      silent.once('close', (closeCode) => resolve(closeCode)),
    );
    expect(code).toBe(4408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
    // No graphql-transport-ws subprotocol: graphql-ws refuses the socket (4406).
    const wrong = new WebSocket(server.url.replace(/^http/, 'ws'));
    wrong.on('error', () => undefined);
    const wrongCode = await new Promise<number>((resolve) =>
      wrong.once('close', (closeCode) => resolve(closeCode)),
    );
    expect(wrongCode).toBe(4406);
  });

  it(
    '1,000 concurrent subscriptions on one process each receive a burst of events, all and in order',
    { timeout: 90_000 },
    async () => {
      await data(
        server.url,
        'mutation { registerAgent(input: { id: "burst", name: "Burst", role: "qa" }) { id } }',
      );
      const { events } = await data(server.url, '{ events(agentId: "burst") { pageInfo { endCursor } } }');
      // Each socket is connected (connection_init acknowledged) before its subscriptions start, so
      // a busy event loop cannot hold a socket's init past the server's 3 s limit (4408).
      const clients = await Promise.all(Array.from({ length: 10 }, () => connectedWsClient(server)));
      const BURST = 30;
      // From the cursor, so a subscription still being set up when the burst starts misses nothing.
      const subscriptions = clients.flatMap((each) =>
        Array.from({ length: 100 }, () =>
          subscribe(
            each,
            EVENTS,
            { agentId: 'burst', types: ['state_updated'], after: events.pageInfo.endCursor },
            'events',
            (items) => items.length === BURST,
          ),
        ),
      );
      for (let n = 1; n <= BURST; n += 1) await writeVersion(server, 'burst', n);
      const results = await Promise.all(subscriptions);
      await Promise.all(clients.map((each) => each.dispose()));
      expect(results).toHaveLength(1000);
      for (const seen of results) {
        expect(seen.map((event) => event.payload.version)).toEqual(
          Array.from({ length: BURST }, (_, index) => index + 1),
        );
      }
    },
  );
});
