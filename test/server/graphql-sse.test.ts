/**
 * GraphQL over SSE (the graphql-sse protocol) at /graphql/stream with the real graphql-sse client:
 * single connection mode (several operations on one event stream) and distinct connections mode,
 * the same authentication as /graphql, and the per-stream operation quota.
 */
import { createClient, type Client, type ClientOptions } from 'graphql-sse';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hs256Token, JWT_SECRET } from '../support/auth.js';
import { startTestServer, type AnyData, type TestServer } from './harness.js';

const clients: Client[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.dispose();
});

function sseClient(server: TestServer, options: Partial<ClientOptions<boolean>> = {}): Client {
  const client: Client = createClient({
    url: `${server.origin}/graphql/stream`,
    singleConnection: true,
    retryAttempts: 0,
    ...options,
  } as ClientOptions);
  clients.push(client);
  return client;
}

/** Every result of one operation until it completes (or the first error, as `{ error }`). */
function results(client: Client, query: string, variables: Record<string, unknown> = {}) {
  return new Promise<AnyData[]>((resolve) => {
    const received: AnyData[] = [];
    client.subscribe<AnyData>(
      { query, variables },
      {
        next: (result) => received.push(result),
        error: (error) => resolve([...received, { error }]),
        complete: () => resolve(received),
      },
    );
  });
}

const TASK_EVENTS = 'subscription($id: ID!) { taskEvents(taskId: $id) { type } }';
const START_WAIT =
  'mutation { executeTask(input: { agentId: "analyst", action: "wait", input: { ms: 300, steps: 2 } }) { id } }';

describe('graphql-sse at /graphql/stream', () => {
  describe('without authentication (local mode)', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer('pglite', { env: { CAS_MAX_SUBSCRIPTIONS_PER_SOCKET: '2' } });
    });
    afterAll(() => server?.close());

    it('single connection mode: a mutation and two task streams share one event stream, each complete', async () => {
      const client = sseClient(server);
      const [first] = await results(client, START_WAIT);
      const [second] = await results(client, START_WAIT);
      const streams = await Promise.all(
        [first, second].map((result) => results(client, TASK_EVENTS, { id: result.data.executeTask.id })),
      );
      for (const stream of streams) {
        const types = stream.map((result) => result.data.taskEvents.type);
        expect(types[0]).toBe('task_queued');
        expect(types.at(-1)).toBe('task_completed');
        expect(types.filter((type) => type === 'task_progress')).toHaveLength(2);
      }
    });

    it('distinct connections mode works on the same endpoint', async () => {
      const client = sseClient(server, { singleConnection: false });
      const [started] = await results(client, START_WAIT);
      const stream = await results(client, TASK_EVENTS, { id: started.data.executeTask.id });
      expect(stream.at(-1).data.taskEvents.type).toBe('task_completed');
    });

    it('refuses more operations on one stream than CAS_MAX_SUBSCRIPTIONS_PER_SOCKET', async () => {
      const client = sseClient(server);
      const live = 'subscription { events(types: ["agent_registered"]) { type } }';
      // Two live-only streams that never complete hold both slots of this stream.
      void results(client, live);
      void results(client, live);
      const [refused] = await results(client, live);
      expect(refused.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    });
  });

  describe('with authentication', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer('pglite', {
        env: { CAS_AUTH: 'auto', SUPABASE_JWT_SECRET: JWT_SECRET },
      });
    });
    afterAll(() => server?.close());

    it('runs operations with a token and refuses them without one', async () => {
      const token = await hs256Token({ sub: 'sse-admin', role: 'admin' });
      const signedIn = sseClient(server, { headers: { authorization: `Bearer ${token}` } });
      const [health] = await results(signedIn, '{ health { ok } }');
      expect(health.data).toEqual({ health: { ok: true } });

      const anonymous = sseClient(server);
      const [refused] = await results(anonymous, 'subscription { agentStatusChanged { id } }');
      expect(refused.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

      // A token that does not verify is refused at the door, as on /graphql.
      const forged = await fetch(`${server.origin}/graphql/stream`, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${await hs256Token({ sub: 'x' }, 'another-secret-of-at-least-32-chars!!')}`,
        },
      });
      expect(forged.status).toBe(401);
      expect(forged.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await forged.json()) as AnyData).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    });
  });
});
