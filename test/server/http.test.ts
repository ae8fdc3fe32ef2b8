/**
 * The GraphQL-over-HTTP surface of the real server: media types, methods, status codes, the public
 * graphql-http audit suite, hostile input, and the health endpoints.
 */
import { Writable } from 'node:stream';
import { serverAudits } from 'graphql-http';
import { createClient } from 'graphql-ws';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { CustomRuntime } from '../../src/runtime/custom-runtime.js';
import { describeEachDatabase } from '../support/databases.js';
import { databaseSnapshot } from '../support/runtime.js';
import {
  errorCodes,
  gql,
  startTestServer,
  type AnyData,
  type GraphQLResponse,
  type TestServer,
} from './harness.js';

const GRAPHQL_RESPONSE = 'application/graphql-response+json';
/** GET requests must carry a header a cross-site form cannot set (CSRF protection, see csrf.ts). */
const CSRF = { 'x-graphql-yoga-csrf': '1' };

/** Whatever went wrong, a client must never see our SQL, our stack or our tables. */
function expectNoLeak(text: string) {
  expect(text).not.toMatch(/\bselect\b.*\bfrom\b/i);
  expect(text).not.toMatch(/cas_[a-z_]+\(/);
  expect(text).not.toMatch(/syntax error at or near|invalid input syntax|relation "|violates/i);
  expect(text).not.toMatch(/\n\s+at [\w.<>]+ \(|node_modules|\.ts:\d+/);
}

async function raw(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  const text = await response.text();
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    text,
    headers: response.headers,
  };
}

describeEachDatabase('GraphQL over HTTP', (kind) => {
  let server: TestServer;
  let url: string;

  beforeAll(async () => {
    server = await startTestServer(kind);
    url = server.url;
  });
  afterAll(() => server?.close());

  describe('media types and methods', () => {
    it('POST with Accept application/graphql-response+json answers in that type', async () => {
      const response = await gql(url, '{ agent(id: "qa") { id status } }');
      expect(response.status).toBe(200);
      expect(response.contentType).toContain(GRAPHQL_RESPONSE);
      expect(response.body).toEqual({ data: { agent: { id: 'qa', status: 'IDLE' } } });
    });

    it('POST with Accept application/json answers in application/json', async () => {
      const response = await raw(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({
          query: 'query Q($id: ID!) { agent(id: $id) { id } }',
          variables: { id: 'qa' },
        }),
      });
      expect(response.status).toBe(200);
      expect(response.contentType).toContain('application/json');
      expect(JSON.parse(response.text)).toEqual({ data: { agent: { id: 'qa' } } });
    });

    it('GET runs queries from the URL', async () => {
      for (const accept of [GRAPHQL_RESPONSE, 'application/json']) {
        const query = encodeURIComponent('query($id: ID!) { agent(id: $id) { id } }');
        const variables = encodeURIComponent(JSON.stringify({ id: 'planner' }));
        const response = await raw(`${url}?query=${query}&variables=${variables}`, {
          headers: { accept, ...CSRF },
        });
        expect(response.status).toBe(200);
        expect(response.contentType).toContain(accept);
        expect(JSON.parse(response.text)).toEqual({ data: { agent: { id: 'planner' } } });
      }
    });

    it('answers with the x-request-id the client sent, or a generated one', async () => {
      const send = (headers: Record<string, string>) =>
        raw(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: GRAPHQL_RESPONSE, ...headers },
          body: JSON.stringify({ query: '{ health { ok } }' }),
        });
      expect((await send({ 'x-request-id': 'trace-42' })).headers.get('x-request-id')).toBe('trace-42');
      const generated = (await send({})).headers.get('x-request-id');
      expect(generated).toMatch(/^[0-9a-f-]{36}$/);
      // Ids that are not short printable tokens are replaced, so they never reach the logs.
      const replaced = (await send({ 'x-request-id': 'bad id with spaces' })).headers.get('x-request-id');
      expect(replaced).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('GET with malformed JSON in variables or extensions is a 400, not a 500', async () => {
      const query = encodeURIComponent('{ health { ok } }');
      for (const parameter of ['variables', 'extensions']) {
        const response = await raw(`${url}?query=${query}&${parameter}=${encodeURIComponent('{not-json')}`, {
          headers: { accept: GRAPHQL_RESPONSE, ...CSRF },
        });
        expect(response.status).toBe(400);
        expect(JSON.parse(response.text).errors[0]).toMatchObject({
          message: `"${parameter}" in the query string is not valid JSON`,
          extensions: { code: 'BAD_REQUEST' },
        });
      }
    });

    it('GET refuses mutations with 405 and changes nothing', async () => {
      const query = encodeURIComponent('mutation { resetAgentState(agentId: "qa") }');
      const response = await raw(`${url}?query=${query}`, { headers: { accept: GRAPHQL_RESPONSE, ...CSRF } });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toContain('POST');
      expect(JSON.parse(response.text).errors[0].message).toMatch(/mutation.*POST/i);
    });

    it('answers malformed requests with 4xx', async () => {
      const post = (body: string, contentType = 'application/json') =>
        raw(url, {
          method: 'POST',
          headers: { 'content-type': contentType, accept: GRAPHQL_RESPONSE },
          body,
        });
      const cases = [
        await post('{"query": "{ health { ok } }"'), // truncated JSON
        await post('{"variables": {}}'), // no query
        await post('{"query": 42}'), // query not a string
        await post('{"query": "{ health { ok } }", "variables": "nope"}'), // variables not an object
        await post('[1, 2, 3]'), // not an object (batching is off)
        await post('query=1', 'text/plain'), // unsupported media type
        await raw(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' }),
        await raw(url, { method: 'DELETE' }),
      ];
      for (const response of cases) {
        expect(response.status, response.text).toBeGreaterThanOrEqual(400);
        expect(response.status, response.text).toBeLessThan(500);
        expectNoLeak(response.text);
      }
      expect(cases[5]!.status).toBe(415);
      expect(cases[6]!.status).toBe(405);
    });

    it('passes every MUST of the graphql-http server audits', async () => {
      const results = [];
      for (const audit of serverAudits({ url })) {
        const result = await audit.fn();
        results.push({
          name: audit.name,
          status: result.status,
          reason: 'reason' in result ? result.reason : '',
        });
      }
      const must = results.filter((result) => result.name.startsWith('MUST'));
      expect(must.length).toBeGreaterThanOrEqual(10);
      expect(must.filter((result) => result.status !== 'ok')).toEqual([]);
      const notOk = results.filter((result) => result.status !== 'ok');
      console.log(
        `[graphql-http audits ${kind}] ${results.length} audits, ${must.length} MUST: ` +
          `${results.length - notOk.length} ok, ${notOk.length} not ok ${JSON.stringify(notOk)}`,
      );
    });
  });

  describe('bad input: each a clear 4xx or a coded GraphQL error, never a 500, never SQL', () => {
    const expectClean = (response: GraphQLResponse) => {
      expect(response.status).toBeLessThan(500);
      expectNoLeak(JSON.stringify(response.body));
    };

    it('syntax errors: 400, GRAPHQL_PARSE_FAILED', async () => {
      const response = await gql(url, '{ agents { id ');
      expectClean(response);
      expect(response.status).toBe(400);
      expect(errorCodes(response)).toEqual(['GRAPHQL_PARSE_FAILED']);
      expect(response.body.errors![0]!.message).toMatch(/^Syntax Error/);
    });

    it('unknown fields: 400, GRAPHQL_VALIDATION_FAILED, without schema suggestions', async () => {
      const response = await gql(url, '{ agents { id passwordHash } }');
      expectClean(response);
      expect(response.status).toBe(400);
      expect(errorCodes(response)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      expect(response.body.errors![0]!.message).toContain('Cannot query field "passwordHash"');
      expect(response.body.errors![0]!.message).not.toMatch(/Did you mean/);
    });

    it('wrong variable types: 400, BAD_USER_INPUT', async () => {
      const response = await gql(url, 'query($first: Int) { tasks(first: $first) { totalCount } }', {
        first: 'many',
      });
      expectClean(response);
      expect(response.status).toBe(400);
      expect(errorCodes(response)).toEqual(['BAD_USER_INPUT']);
      expect(response.body.errors![0]!.message).toContain('$first');
    });

    it('first beyond 500 or below 1: BAD_USER_INPUT naming the limit', async () => {
      for (const field of ['tasks', 'logs', 'events']) {
        for (const first of [501, 100_000, 0, -1]) {
          const response = await gql(
            url,
            `query($first: Int) { ${field}(first: $first) { pageInfo { hasNextPage } } }`,
            {
              first,
            },
          );
          expectClean(response);
          expect(errorCodes(response)).toEqual(['BAD_USER_INPUT']);
          expect(response.body.errors![0]!.message).toContain('between 1 and 500');
          expect(response.body.data).toBeNull();
        }
      }
      const recent = await gql(url, '{ agents { recentTasks(first: 1000) { id } } }');
      expect(errorCodes(recent)[0]).toBe('BAD_USER_INPUT');
    });

    it('a forged or foreign cursor: BAD_USER_INPUT', async () => {
      const { body } = await gql(url, '{ events(first: 1) { pageInfo { endCursor } } }');
      const eventCursor = (body.data as { events: { pageInfo: { endCursor: string | null } } }).events
        .pageInfo.endCursor;
      for (const [field, after] of [
        ['tasks', "' OR 1=1 --"],
        ['logs', 'bm90IGEgY3Vyc29y'],
        ['tasks', eventCursor ?? 'ZXZlbnQ6MQ'],
      ] as const) {
        const response = await gql(
          url,
          `query($after: String) { ${field}(after: $after) { pageInfo { hasNextPage } } }`,
          {
            after,
          },
        );
        expectClean(response);
        expect(errorCodes(response)).toEqual(['BAD_USER_INPUT']);
      }
    });

    it('deep nesting: 400, GRAPHQL_VALIDATION_FAILED (depth limit)', async () => {
      const deep =
        '{ tasks { edges { node { agent { recentTasks { agent { recentTasks { agent { recentTasks { agent { id } } } } } } } } } } }';
      const response = await gql(url, deep);
      expectClean(response);
      expect(response.status).toBe(400);
      expect(errorCodes(response)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      expect(response.body.errors![0]!.message).toMatch(/depth limit of 10 exceeded, found 11/);
    });

    it('too many aliases, too many tokens, too costly: rejected before execution', async () => {
      const aliases = `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: health { ok }`).join(' ')} }`;
      const tokens = `{ ${Array.from({ length: 1_000 }, () => 'health { ok }').join(' ')} }`;
      // Lists inside lists: 500 tasks × 100 recent tasks each, within every other limit.
      const costly =
        '{ tasks(first: 500) { edges { node { agent { recentTasks(first: 100) { id status } } } } } }';
      const [tooManyAliases, tooManyTokens, tooCostly] = await Promise.all([
        gql(url, aliases),
        gql(url, tokens),
        gql(url, costly),
      ]);
      for (const response of [tooManyAliases, tooManyTokens, tooCostly]) {
        expectClean(response);
        expect(response.status).toBe(400);
        expect(response.body.data).toBeUndefined();
      }
      expect(errorCodes(tooManyAliases)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      expect(tooManyAliases.body.errors![0]!.message).toMatch(/Aliases limit of 15/);
      expect(errorCodes(tooManyTokens)).toEqual(['GRAPHQL_PARSE_FAILED']);
      expect(tooManyTokens.body.errors![0]!.message).toMatch(/Token limit of 2000/);
      expect(errorCodes(tooCostly)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      expect(tooCostly.body.errors![0]!.message).toMatch(/Cost limit of 50000/);
    });

    it('a 5 MB body: 413 without reading it all, and the server keeps serving', async () => {
      const big = JSON.stringify({
        query: '{ health { ok } }',
        variables: { padding: 'x'.repeat(5_000_000) },
      });
      const response = await raw(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: GRAPHQL_RESPONSE },
        body: big,
      });
      expect(response.status).toBe(413);
      expect(JSON.parse(response.text).errors[0].extensions.code).toBe('REQUEST_ENTITY_TOO_LARGE');

      // Streamed without a Content-Length: cut off once 1 MB has arrived.
      const encoder = new TextEncoder();
      const stream = new ReadableStream({
        start(controller) {
          for (let i = 0; i < 50; i++)
            controller.enqueue(encoder.encode(i === 0 ? big.slice(0, 100_000) : 'x'.repeat(100_000)));
          controller.close();
        },
      });
      const streamed = await raw(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: GRAPHQL_RESPONSE },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      expect(streamed.status).toBe(413);

      expect((await gql(url, '{ health { ok } }')).body).toEqual({ data: { health: { ok: true } } });
    });

    it('SQL-looking ids: BAD_USER_INPUT before any query runs, and the data is intact', async () => {
      const sqlish = ["'; DROP TABLE cas_tasks; --", "marketer' OR '1'='1", '1 OR 1=1', 'x\u0000y'];
      for (const id of sqlish) {
        const responses = await Promise.all([
          gql(url, 'query($id: ID!) { task(id: $id) { id } }', { id }),
          gql(url, 'query($id: ID!) { agent(id: $id) { id } }', { id }),
          gql(url, 'query($id: ID!) { tasks(agentId: $id) { totalCount } }', { id }),
          gql(url, 'query($id: ID!) { logs(taskId: $id) { edges { cursor } } }', { id }),
          gql(url, 'query($id: ID!) { events(agentId: $id) { edges { cursor } } }', { id }),
          gql(url, 'mutation($id: ID!) { cancelTask(id: $id) { id } }', { id }),
          gql(url, 'mutation($id: ID!) { updateAgentState(agentId: $id, data: {}) { version } }', { id }),
          gql(url, 'mutation($id: ID!) { registerAgent(input: { id: $id, name: "x", role: "y" }) { id } }', {
            id,
          }),
        ]);
        for (const response of responses) {
          expectClean(response);
          expect(errorCodes(response)).toEqual(['BAD_USER_INPUT']);
        }
      }
      const { body } = await gql(url, '{ agents { id } tasks { totalCount } }');
      expect((body.data as { agents: unknown[] }).agents).toHaveLength(8);
    });

    it('invalid JSON arguments and unknown enum values are refused by coercion', async () => {
      const badEnum = await gql(url, '{ tasks(status: [DONE]) { totalCount } }');
      expectClean(badEnum);
      expect(errorCodes(badEnum)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      const lowerCase = await gql(url, 'query($s: [TaskStatus!]) { tasks(status: $s) { totalCount } }', {
        s: ['queued'],
      });
      expectClean(lowerCase);
      expect(errorCodes(lowerCase)).toEqual(['BAD_USER_INPUT']);
      const badDate = await gql(url, 'query($from: DateTime) { logs(from: $from) { edges { cursor } } }', {
        from: 'yesterday',
      });
      expectClean(badDate);
      expect(errorCodes(badDate)).toEqual(['BAD_USER_INPUT']);
    });
  });

  describe('input PostgreSQL cannot store or the API never handed out: BAD_USER_INPUT, nothing written', () => {
    const NUL = 'a\u0000b';
    const PAST_THE_HEAD = Buffer.from('event:1000000000').toString('base64url');
    const LOG_PAST_THE_HEAD = Buffer.from('log:1000000000').toString('base64url');
    const nested = (levels: number): unknown => {
      let value: unknown = 'bottom';
      for (let level = 0; level < levels; level += 1) value = [value];
      return value;
    };

    /** Arrays `levels` deep as JSON text (JSON.stringify itself overflows the stack on deep values). */
    const nestedJson = (levels: number) => `${'['.repeat(levels)}"bottom"${']'.repeat(levels)}`;

    /** POSTs an operation whose variables are JSON text as is. */
    async function gqlWithJsonText(query: string, variablesJson: string): Promise<GraphQLResponse> {
      const response = await raw(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: GRAPHQL_RESPONSE },
        body: `{"query":${JSON.stringify(query)},"variables":${variablesJson}}`,
      });
      return { status: response.status, contentType: response.contentType, body: JSON.parse(response.text) };
    }

    /**
     * Sends each operation (variables as an object, or as JSON text) and expects BAD_USER_INPUT
     * (matching `message`) with no row changed.
     */
    async function expectRefused(
      operations: [query: string, variables?: Record<string, unknown> | string][],
      message?: RegExp,
    ) {
      // Tasks earlier tests queued may still be finishing on the worker: wait for them, so the
      // snapshot compares only what this request could have written.
      await vi.waitFor(
        async () => {
          const [row] = await server.testDb.db.query<{ n: number }>(
            `select count(*)::int as n from cas_tasks where status in ('queued', 'running') and run_at <= now()`,
          );
          expect(row!.n).toBe(0);
        },
        { timeout: 60_000, interval: 100 },
      );
      const before = await databaseSnapshot(server.testDb.db);
      for (const [query, variables] of operations) {
        const response =
          typeof variables === 'string'
            ? await gqlWithJsonText(query, variables)
            : await gql(url, query, variables);
        expect(response.status, query).toBeLessThan(500);
        expectNoLeak(JSON.stringify(response.body));
        expect(errorCodes(response), `${query} ${JSON.stringify(response.body)}`).toEqual(['BAD_USER_INPUT']);
        if (message) expect(response.body.errors![0]!.message).toMatch(message);
      }
      expect(await databaseSnapshot(server.testDb.db)).toBe(before);
    }

    it('a NUL character in any string or JSON input, at any depth, keys too', async () => {
      const register = 'mutation($input: RegisterAgentInput!) { registerAgent(input: $input) { id } }';
      const execute = 'mutation($input: ExecuteTaskInput!) { executeTask(input: $input) { id } }';
      const state = 'mutation($data: JSON!) { updateAgentState(agentId: "qa", data: $data) { version } }';
      await expectRefused(
        [
          [register, { input: { id: 'nul', name: NUL, role: 'qa' } }],
          [register, { input: { id: 'nul', name: 'X', role: NUL } }],
          [register, { input: { id: 'nul', name: 'X', role: 'qa', description: NUL } }],
          [execute, { input: { agentId: 'qa', action: NUL } }],
          [execute, { input: { agentId: 'qa', action: 'ping', idempotencyKey: NUL } }],
          [execute, { input: { agentId: 'qa', action: 'ping', input: NUL } }],
          [execute, { input: { agentId: 'qa', action: 'ping', input: { a: [{ b: NUL }] } } }],
          [execute, { input: { agentId: 'qa', action: 'ping', input: { a: { [NUL]: 1 } } } }],
          [execute, { input: { agentId: 'qa', action: 'fail', input: { message: NUL } } }],
          [state, { data: { note: NUL } }],
          [state, { data: { [NUL]: 1 } }],
          // The same as GraphQL string literals, escaped in the document itself.
          ['mutation { registerAgent(input: { id: "nul", name: "a\\u0000b", role: "qa" }) { id } }'],
          [
            'mutation { executeTask(input: { agentId: "qa", action: "ping", input: { k: "\\u0000" } }) { id } }',
          ],
          ['mutation { updateAgentState(agentId: "qa", data: { k: ["\\u0000"] }) { version } }'],
          ['query($types: [String!]) { events(types: $types) { edges { cursor } } }', { types: [NUL] }],
        ],
        /NUL character/,
      );
    });

    it('JSON nested deeper than the limit says so, not that it is too large', async () => {
      await expectRefused(
        [
          [
            'mutation($input: JSON) { executeTask(input: { agentId: "qa", action: "ping", input: $input }) { id } }',
            { input: nested(101) },
          ],
          [
            'mutation($input: JSON) { executeTask(input: { agentId: "qa", action: "ping", input: $input }) { id } }',
            `{"input":${nestedJson(50_000)}}`,
          ],
          [
            'mutation($data: JSON!) { updateAgentState(agentId: "qa", data: $data) { version } }',
            { data: { deep: nested(200) } },
          ],
        ],
        /nested too deeply \(more than 100 levels\)/,
      );
    });

    it('a cursor past the head of the event log or the log', async () => {
      await expectRefused(
        [
          ['query($after: String) { events(after: $after) { edges { cursor } } }', { after: PAST_THE_HEAD }],
          [
            'query($after: String) { logs(after: $after) { edges { cursor } } }',
            { after: LOG_PAST_THE_HEAD },
          ],
        ],
        /past the end of the (event )?log/,
      );
      // Subscriptions refuse it up front too (here over SSE): resuming there would skip every event.
      const { body } = await gql(
        url,
        'mutation { executeTask(input: { agentId: "qa", action: "ping" }) { id } }',
      );
      const taskId = (body.data as AnyData).executeTask.id as string;
      for (const [query, variables] of [
        [
          'subscription($id: ID!, $after: String) { taskEvents(taskId: $id, after: $after) { cursor } }',
          { id: taskId, after: PAST_THE_HEAD },
        ],
        ['subscription($after: String) { events(after: $after) { cursor } }', { after: PAST_THE_HEAD }],
      ] as const) {
        const response = await raw(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify({ query, variables }),
        });
        expect(response.text).toContain('"code":"BAD_USER_INPUT"');
        expect(response.text).toContain('past the end of the event log');
      }
    });

    it('dates outside 1970-9999 in every DateTime input', async () => {
      await expectRefused(
        [
          [
            'mutation($at: DateTime) { executeTask(input: { agentId: "qa", action: "ping", runAt: $at }) { id } }',
            { at: '0050-06-01T00:00:00Z' },
          ],
          [
            'mutation { executeTask(input: { agentId: "qa", action: "ping", runAt: "1969-12-31T23:59:59Z" }) { id } }',
          ],
          [
            'query($from: DateTime) { logs(from: $from) { edges { cursor } } }',
            { from: '0001-01-01T00:00:00Z' },
          ],
          ['query($to: DateTime) { logs(to: $to) { edges { cursor } } }', { to: '0099-12-31T00:00:00Z' }],
          ['{ agent(id: "qa") { metrics(from: "0010-01-01T00:00:00Z") { totalRuns } } }'],
        ],
        /1970-01-01T00:00:00Z or later/,
      );
    });
  });

  describe('executeTask(wait: true) over HTTP', () => {
    it('stops waiting when the client aborts the request', async () => {
      const runtime = server.runtime as CustomRuntime;
      let release!: () => void;
      let started!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const running = new Promise<void>((resolve) => (started = resolve));
      runtime.defineActions('qa', {
        heldOverHttp: async () => {
          started();
          await released;
          return { released: true };
        },
      });
      const idle = runtime.liveSubscriberCounts().events;
      const client = new AbortController();
      const request = fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: GRAPHQL_RESPONSE },
        body: JSON.stringify({
          query:
            'mutation { executeTask(input: { agentId: "qa", action: "heldOverHttp", wait: true }) { id } }',
        }),
        signal: client.signal,
      });
      request.catch(() => undefined);
      await running;
      await vi.waitFor(() => expect(runtime.liveSubscriberCounts().events).toBe(idle + 1));
      client.abort();
      // The server notices the closed connection and drops the wait: nothing is subscribed for it.
      await vi.waitFor(() => expect(runtime.liveSubscriberCounts().events).toBe(idle));
      release();
      expect((await gql(url, '{ health { ok } }')).body).toEqual({ data: { health: { ok: true } } });
    });
  });

  describe('health endpoints', () => {
    it('GET /health is a liveness answer', async () => {
      const response = await raw(`${server.origin}/health`);
      expect(response.status).toBe(200);
      expect(response.contentType).toContain('application/json');
      const body = JSON.parse(response.text);
      expect(body.status).toBe('ok');
      expect(body.uptimeSeconds).toBeGreaterThanOrEqual(0);
    });

    it('GET /ready is 200 with the database and migrations checked', async () => {
      const response = await raw(`${server.origin}/ready`);
      expect(response.status).toBe(200);
      expect(JSON.parse(response.text)).toMatchObject({
        status: 'ready',
        ok: true,
        database: 'ok',
        migrationsApplied: true,
      });
    });

    it('GET / without a dashboard says so and links GraphiQL; unknown paths are 404', async () => {
      const root = await fetch(`${server.origin}/`, { redirect: 'manual' });
      expect(root.status).toBe(200);
      expect(await root.text()).toContain('The dashboard is not built or is off');
      expect((await raw(`${server.origin}/nope`)).status).toBe(404);
    });
  });
});

describeEachDatabase('when the database goes away', (kind) => {
  let server: TestServer;
  const logLines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    server = await startTestServer(kind, {
      env: { CAS_WORKERS: '0' },
      logger: pino({ level: 'error' }, sink),
    });
    await server.testDb.db.close();
  });
  afterAll(() => server?.close());

  it('/ready answers 503 and /health still 200', async () => {
    const ready = await raw(`${server.origin}/ready`);
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.text)).toMatchObject({ status: 'not ready', ok: false, database: 'unreachable' });
    expect((await raw(`${server.origin}/health`)).status).toBe(200);
  });

  it('queries fail with a masked error carrying the request id, logged with the cause', async () => {
    const response = await gql(server.url, '{ agents { id } }', undefined, { 'x-request-id': 'req-123' });
    expect(response.status).toBe(200);
    expectNoLeak(JSON.stringify(response.body));
    expect(response.body.errors).toEqual([
      {
        message: 'Unexpected error.',
        locations: [{ line: 1, column: 3 }],
        path: ['agents'],
        extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'req-123' },
      },
    ]);
    const logged = logLines.find((line) => line.requestId === 'req-123');
    expect(logged).toMatchObject({
      level: 50,
      path: 'agents',
      msg: 'unexpected error while resolving an operation',
    });
    expect((logged!.err as { message: string }).message).not.toBe('');
  });

  it('over a WebSocket, with the request id of its upgrade request', async () => {
    // The socket keeps the x-request-id of its upgrade request (not the request itself) for its life.
    class WithRequestId extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { headers: { 'x-request-id': 'ws-req-7' } });
      }
    }
    const client = createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: WithRequestId,
      retryAttempts: 0,
    });
    try {
      const result = await new Promise<unknown>((resolve, reject) =>
        client.subscribe(
          { query: '{ agents { id } }' },
          { next: resolve, error: reject, complete: () => undefined },
        ),
      );
      expect(result).toMatchObject({
        errors: [
          {
            message: 'Unexpected error.',
            extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'ws-req-7' },
          },
        ],
      });
      expect(logLines.find((line) => line.requestId === 'ws-req-7')).toMatchObject({
        level: 50,
        path: 'agents',
      });
    } finally {
      await client.dispose();
    }
  });
});
