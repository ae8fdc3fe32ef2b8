/**
 * Access beyond the roles table: callers see and cancel only their own tasks (unless granted
 * tasks:all), every event names its caller, API keys are stored hashed and revocable, sockets close
 * when their token expires, and the local development mode.
 */
import { createHash } from 'node:crypto';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { authEnv, hs256Token, startJwksServer, type JwksServer } from '../support/auth.js';
import { data, errorCodes, gql, startTestServer, type TestServer } from './harness.js';

const bearer = async (sub: string, role?: 'viewer' | 'operator' | 'admin', grants?: string[]) => ({
  authorization: `Bearer ${await hs256Token({ sub, role, grants })}`,
});

/** Queued for tomorrow: stays cancellable for the whole test. */
const QUEUE_LATER = `mutation($runAt: DateTime!) {
  executeTask(input: { agentId: "analyst", action: "ping", runAt: $runAt }) { id createdBy }
}`;
const tomorrow = () => ({ runAt: new Date(Date.now() + 86_400_000).toISOString() });

describe('who sees and changes what, with authentication on [pglite]', () => {
  let server: TestServer;
  let jwks: JwksServer;
  beforeAll(async () => {
    jwks = await startJwksServer();
    server = await startTestServer('pglite', { env: authEnv(jwks) });
  });
  afterAll(async () => {
    await server?.close();
    await jwks?.close();
  });

  it('keeps each caller to its own tasks unless granted tasks:all; events name the caller', async () => {
    const alice = await bearer('alice', 'operator');
    const bob = await bearer('bob', 'operator');
    const auditor = await bearer('auditor', 'viewer', ['tasks:all']);
    const queued = await gql(server.url, QUEUE_LATER, tomorrow(), alice);
    const task = queued.body.data!.executeTask as { id: string; createdBy: string };
    expect(task.createdBy).toBe('alice');
    await gql(server.url, QUEUE_LATER, tomorrow(), bob);

    // Bob can neither read nor cancel it, nor stream it, nor read its events.
    const read = await gql(server.url, 'query($id: ID!) { task(id: $id) { id } }', { id: task.id }, bob);
    expect(errorCodes(read)).toEqual(['FORBIDDEN']);
    const cancel = await gql(
      server.url,
      'mutation($id: ID!) { cancelTask(id: $id) { id } }',
      { id: task.id },
      bob,
    );
    expect(errorCodes(cancel)).toEqual(['FORBIDDEN']);
    const events = await gql(
      server.url,
      'query($id: ID!) { events(taskId: $id) { edges { node { id } } } }',
      { id: task.id },
      bob,
    );
    expect(errorCodes(events)).toEqual(['FORBIDDEN']);

    // Lists are filtered in SQL: each sees its own, the counts agree, recentTasks too.
    const LIST =
      '{ tasks { totalCount edges { node { createdBy } } } agent(id: "analyst") { recentTasks { createdBy } } }';
    for (const [caller, name] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const) {
      const { body } = await gql(server.url, LIST, {}, caller);
      const creators = (body.data!.tasks.edges as { node: { createdBy: string } }[]).map(
        (edge) => edge.node.createdBy,
      );
      expect(creators).toEqual([name]);
      expect(body.data!.tasks.totalCount).toBe(1);
      expect(body.data!.agent.recentTasks).toEqual([{ createdBy: name }]);
    }
    const all = await gql(server.url, LIST, {}, auditor);
    expect(all.body.data!.tasks.totalCount).toBe(2);
    expect(
      errorCodes(await gql(server.url, 'query($id: ID!) { task(id: $id) { id } }', { id: task.id }, auditor)),
    ).toEqual([]);

    // Alice cancels her own task; both events carry her id.
    await gql(server.url, 'mutation($id: ID!) { cancelTask(id: $id) { status } }', { id: task.id }, alice);
    const history = await gql(
      server.url,
      'query($id: ID!) { events(taskId: $id) { edges { node { type userId } } } }',
      { id: task.id },
      alice,
    );
    expect(history.body.data!.events.edges.map((edge: { node: unknown }) => edge.node)).toEqual([
      { type: 'task_queued', userId: 'alice' },
      { type: 'task_cancelled', userId: 'alice' },
    ]);
  });

  it('creates API keys whose secret is shown once and stored only as a hash; revoked keys stop at once', async () => {
    const admin = await bearer('root', 'admin');
    const created = await gql(
      server.url,
      'mutation { createApiKey(role: OPERATOR, name: "ci") { secret apiKey { id role createdBy lastUsedAt } } }',
      {},
      admin,
    );
    const { secret, apiKey } = created.body.data!.createApiKey as {
      secret: string;
      apiKey: { id: string; role: string; createdBy: string; lastUsedAt: null };
    };
    expect(secret).toMatch(/^cas_[A-Za-z0-9_-]{43}$/);
    expect(apiKey).toMatchObject({ role: 'OPERATOR', createdBy: 'root', lastUsedAt: null });
    const stored = await server.testDb.db.query<Record<string, unknown>>(
      'select * from cas_api_keys where id = $1',
      [apiKey.id],
    );
    expect(stored[0]!.key_hash).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(JSON.stringify(stored)).not.toContain(secret.slice(4));

    const withKey = { authorization: `Bearer ${secret}` };
    const ran = await gql(
      server.url,
      'mutation { executeTask(input: { agentId: "qa", action: "ping" }) { createdBy } }',
      {},
      withKey,
    );
    expect(ran.body.data!.executeTask.createdBy).toBe(`apiKey:${apiKey.id}`);
    const listed = await gql(server.url, '{ apiKeys { id lastUsedAt } }', {}, admin);
    const entry = (listed.body.data!.apiKeys as { id: string; lastUsedAt: string | null }[]).find(
      (key) => key.id === apiKey.id,
    );
    expect(entry!.lastUsedAt).not.toBeNull();

    await gql(
      server.url,
      'mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }',
      { id: apiKey.id },
      admin,
    );
    const refused = await gql(server.url, '{ health { ok } }', {}, withKey);
    expect(errorCodes(refused)).toEqual(['UNAUTHENTICATED']);
    expect(refused.status).toBe(401);
    expect(refused.body.errors![0]!.message).toBe('the API key is unknown or revoked');
  });

  it('authenticates a socket from the upgrade header too, and closes it with 4403 when the token expires', async () => {
    // Credentials on the upgrade request instead of in connection_init.
    const withHeader = (token: string) =>
      class extends WebSocket {
        constructor(url: string, protocols?: string | string[]) {
          super(url, protocols, { headers: { authorization: `Bearer ${token}` } });
        }
      };
    const token = await hs256Token({ sub: 'carol', role: 'viewer' });
    const health = await new Promise((resolve, reject) => {
      const client = createClient({
        url: server.url.replace(/^http/, 'ws'),
        webSocketImpl: withHeader(token),
        retryAttempts: 0,
      });
      client.subscribe(
        { query: '{ health { ok } }' },
        { next: resolve, error: reject, complete: () => void client.dispose() },
      );
    });
    expect(health).toEqual({ data: { health: { ok: true } } });

    const expiring = await hs256Token({ sub: 'carol', role: 'viewer', expiresIn: 2 });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      const client = createClient({
        url: server.url.replace(/^http/, 'ws'),
        webSocketImpl: withHeader(expiring),
        retryAttempts: 0,
        on: { closed: (event) => resolve(event as { code: number; reason: string }) },
      });
      client.subscribe(
        { query: 'subscription { agentStatusChanged { id } }' },
        { next: () => undefined, error: () => undefined, complete: () => undefined },
      );
    });
    // The open subscription is ended by the server when the token's exp passes.
    expect(await closed).toMatchObject({ code: 4403, reason: 'Token expired' });
  });

  it('ends an SSE subscription with UNAUTHENTICATED when its token expires, then completes', async () => {
    const expiring = await hs256Token({ sub: 'dave', role: 'viewer', expiresIn: 2 });
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${expiring}`,
      },
      body: JSON.stringify({ query: 'subscription { agentStatusChanged { id } }' }),
    });
    expect(response.status).toBe(200);
    // The stream stays open until the token's exp, then carries one error and completes.
    const text = await response.text();
    const events = text
      .split('\n\n')
      .map((block) => ({
        event: /^event: (.*)$/m.exec(block)?.[1],
        data: /^data: (.*)$/m.exec(block)?.[1],
      }))
      .filter((message) => message.event);
    expect(events.map((message) => message.event)).toEqual(['next', 'complete']);
    const payload = JSON.parse(events[0]!.data!) as { errors: { extensions: { code: string } }[] };
    expect(payload.errors.map((error) => error.extensions.code)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('local mode (no authentication configured) [pglite]', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('pglite');
  });
  afterAll(() => server?.close());

  it('treats callers without credentials as the local admin, honours API keys, refuses JWTs', async () => {
    const created = await data(
      server.url,
      'mutation { createApiKey(role: VIEWER, name: "script") { secret } }',
    );
    const viewerKey = { authorization: `Bearer ${created.createApiKey.secret}` };
    expect(errorCodes(await gql(server.url, '{ agents { id } }', {}, viewerKey))).toEqual([]);
    const refused = await gql(
      server.url,
      'mutation { executeTask(input: { agentId: "qa", action: "ping" }) { id } }',
      {},
      viewerKey,
    );
    expect(errorCodes(refused)).toEqual(['FORBIDDEN']);
    const jwt = await gql(server.url, '{ agents { id } }', {}, await bearer('someone', 'admin'));
    expect(errorCodes(jwt)).toEqual(['UNAUTHENTICATED']);
    expect(jwt.body.errors![0]!.message).toMatch(/verifies no JWTs/);
  });
});
