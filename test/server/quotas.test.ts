/**
 * Quotas and limits against abuse: operations per socket, sockets and SSE streams per caller,
 * mutations per minute per caller, the response-size cap and repeated fields. Each refusal is a
 * coded error (RATE_LIMITED with retryAfter where waiting helps), and the server keeps serving.
 */
import { createClient, type Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { errorCodes, gql, startTestServer, type TestServer } from './harness.js';

/** A live subscription that stays open: nothing in these tests resets the qa agent's state. */
const LIVE_EVENTS = 'subscription { events(agentId: "qa", types: ["state_reset"]) { id } }';

const wsClient = (server: TestServer) =>
  createClient({
    url: server.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
  });

/** Subscribes and resolves with the first thing that happens: an error or a completion (a live one never does). */
function firstOutcome(client: Client, query: string) {
  return new Promise<{ errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }>(
    (resolve) => {
      client.subscribe(
        { query },
        {
          next: (result) => {
            if (result.errors) resolve({ errors: result.errors });
          },
          error: (error) =>
            resolve({ errors: Array.isArray(error) ? error : [{ message: String(error), extensions: {} }] }),
          complete: () => resolve({}),
        },
      );
    },
  );
}

/** Opens a socket and sends connection_init; resolves with 'ack' or the close code. */
function connect(url: string) {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const outcome = new Promise<'ack' | number>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
    socket.once('message', () => resolve('ack'));
    socket.once('close', (code) => resolve(code));
  });
  return { socket, outcome };
}

/** An SSE subscription request; the response stays open until aborted. */
const openEventStream = (server: TestServer, signal: AbortSignal) =>
  fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: LIVE_EVENTS }),
    signal,
  });

describe('quotas', () => {
  let server: TestServer;
  const clients: Client[] = [];
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    server = await startTestServer('pglite', {
      env: {
        CAS_MAX_SUBSCRIPTIONS_PER_SOCKET: '3',
        CAS_MAX_SOCKETS_PER_CALLER: '2',
        CAS_MAX_SSE_STREAMS_PER_CALLER: '2',
        CAS_MAX_RESPONSE_BYTES: '20000',
        CAS_MUTATION_RATE_LIMIT: '3',
      },
    });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.dispose()));
    for (const socket of sockets.splice(0)) socket.close();
  });
  afterAll(() => server?.close());

  // First: sockets of later tests may still be closing on the server side after their dispose().
  it('closes the socket past CAS_MAX_SOCKETS_PER_CALLER with 4429, and frees the slot on close', async () => {
    const first = connect(server.url.replace(/^http/, 'ws'));
    const second = connect(server.url.replace(/^http/, 'ws'));
    sockets.push(first.socket, second.socket);
    expect([await first.outcome, await second.outcome]).toEqual(['ack', 'ack']);
    const third = connect(server.url.replace(/^http/, 'ws'));
    sockets.push(third.socket);
    expect(await third.outcome).toBe(4429);

    const closed = new Promise((resolve) => first.socket.once('close', resolve));
    first.socket.close();
    await closed;
    // The server counts the slot free once it has seen the close; a new socket then fits.
    let again = connect(server.url.replace(/^http/, 'ws'));
    while ((await again.outcome) !== 'ack') again = connect(server.url.replace(/^http/, 'ws'));
    sockets.push(again.socket);
  });

  it('refuses the operation past CAS_MAX_SUBSCRIPTIONS_PER_SOCKET on one socket, RATE_LIMITED', async () => {
    const client = wsClient(server);
    clients.push(client);
    const outcomes = [1, 2, 3].map(() => firstOutcome(client, LIVE_EVENTS));
    const refused = await firstOutcome(client, LIVE_EVENTS);
    expect(refused.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(refused.errors?.[0]?.message).toMatch(/at most 3/);
    // The three live subscriptions are untouched: none has an outcome yet.
    expect(await Promise.race([...outcomes, Promise.resolve('pending')])).toBe('pending');
  });

  it('refuses an SSE stream past CAS_MAX_SSE_STREAMS_PER_CALLER with 429, RATE_LIMITED and Retry-After', async () => {
    const aborts = [new AbortController(), new AbortController()];
    const open = await Promise.all(aborts.map((abort) => openEventStream(server, abort.signal)));
    for (const response of open) expect(response.status).toBe(200);
    const refused = await openEventStream(server, new AbortController().signal);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = await refused.json();
    expect(body.errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
    expect(body.errors[0].extensions.http).toBeUndefined();
    for (const abort of aborts) abort.abort();
  });

  it('caps the serialized response (CAS_MAX_RESPONSE_BYTES): RESPONSE_TOO_LARGE, no data', async () => {
    const big = 'x'.repeat(30_000);
    const { body } = await gql(
      server.url,
      'mutation($input: JSON) { executeTask(input: { agentId: "qa", action: "ping", input: $input }) { id } }',
      { input: { big } },
    );
    // The mutation's own answer is small; reading the task back is not.
    const taskId = body.data!.executeTask.id;
    const read = await gql(server.url, 'query($id: ID!) { task(id: $id) { input } }', { id: taskId });
    expect(read.body.data).toBeNull();
    expect(errorCodes(read)).toEqual(['RESPONSE_TOO_LARGE']);
    const small = await gql(server.url, 'query($id: ID!) { task(id: $id) { id } }', { id: taskId });
    expect(small.body.data).toEqual({ task: { id: taskId } });

    const client = wsClient(server);
    clients.push(client);
    const overSocket = await firstOutcome(client, `{ task(id: "${taskId}") { input } }`);
    expect(overSocket.errors?.[0]?.extensions?.code).toBe('RESPONSE_TOO_LARGE');
  });

  it('refuses a field repeated many times in one selection set before validating it', async () => {
    const repeated = `{ ${Array.from({ length: 400 }, () => 'agents { id }').join(' ')} }`;
    const response = await gql(server.url, repeated);
    expect(response.status).toBe(400);
    expect(errorCodes(response)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(response.body.errors![0]!.message).toMatch(/"agents" is selected 400 times/);
    // Through fragments too.
    const spread = `{ ...A ...B agents { id } } fragment A on Query { ${'agents { id } '.repeat(6)}} fragment B on Query { ${'agents { id } '.repeat(6)}}`;
    expect(errorCodes(await gql(server.url, spread))).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    // A few repeats, as fragments of a real client produce, are fine.
    expect((await gql(server.url, '{ agents { id } agents { id name } }')).body.errors).toBeUndefined();
  });
});

describe('mutation rate limit', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('pglite', { env: { CAS_MUTATION_RATE_LIMIT: '3' } });
  });
  afterAll(() => server?.close());

  it('refuses the caller’s mutations past CAS_MUTATION_RATE_LIMIT a minute: 429, RATE_LIMITED, retryAfter', async () => {
    const reset = 'mutation { resetAgentState(agentId: "qa") }';
    for (let i = 0; i < 3; i++) expect((await gql(server.url, reset)).body.errors).toBeUndefined();
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: reset }),
    });
    expect(response.status).toBe(429);
    const retryAfter = Number(response.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = await response.json();
    expect(body.data).toBeUndefined();
    expect(body.errors[0].extensions).toEqual({ code: 'RATE_LIMITED', retryAfter });

    // Queries are not counted; the same caller over WebSocket is refused too.
    expect((await gql(server.url, '{ health { ok } }')).body).toEqual({ data: { health: { ok: true } } });
    const client = wsClient(server);
    const overSocket = await firstOutcome(client, reset);
    await client.dispose();
    expect(overSocket.errors?.[0]?.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      retryAfter: expect.any(Number),
    });
    expect(overSocket.errors?.[0]?.extensions?.http).toBeUndefined();
  });
});
