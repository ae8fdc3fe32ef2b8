/**
 * Bad subscription input is the caller's mistake: it gets a coded error, and the server logs it at
 * most at info, without a stack, so callers cannot flood the error log (graphql-ws and SSE alike).
 */
import { Writable } from 'node:stream';
import { createClient, type Client } from 'graphql-ws';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from './harness.js';

const BAD_INPUTS = [
  ['invalid variables', 'subscription($id: ID!) { taskUpdated(id: $id) { id } }', { id: 42.5 }],
  ['a missing variable', 'subscription($id: ID!) { taskUpdated(id: $id) { id } }', {}],
  ['an unknown subscription', 'subscription { nothingLikeThis { id } }', {}],
  ['a malformed cursor', 'subscription { events(after: "not-a-cursor") { id } }', {}],
  ['a malformed id', 'subscription { taskEvents(taskId: "1; drop table") { id } }', {}],
  ['an unknown task', 'subscription { taskUpdated(id: "00000000-0000-4000-8000-000000000000") { id } }', {}],
] as const;

type Outcome = { codes: unknown[] };

function overSocket(client: Client, query: string, variables: Record<string, unknown>) {
  return new Promise<Outcome>((resolve) => {
    const codes: unknown[] = [];
    client.subscribe(
      { query, variables },
      {
        next: (result) => codes.push(...(result.errors ?? []).map((error) => error.extensions?.code)),
        error: (error) =>
          resolve({
            codes: Array.isArray(error)
              ? error.map((e: { extensions?: { code?: string } }) => e.extensions?.code)
              : [String(error)],
          }),
        complete: () => resolve({ codes }),
      },
    );
  });
}

async function overSse(url: string, query: string, variables: Record<string, unknown>): Promise<Outcome> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  return { codes: [...text.matchAll(/"code":"(\w+)"/g)].map((match) => match[1]) };
}

describe('bad subscription input in the log', () => {
  let server: TestServer;
  let client: Client;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    server = await startTestServer('pglite', { logger: pino({ level: 'info' }, sink) });
    client = createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
  });
  afterAll(async () => {
    await client?.dispose();
    await server?.close();
  });

  for (const [what, query, variables] of BAD_INPUTS) {
    it(`${what}: a coded error over graphql-ws and SSE, nothing above info in the log`, async () => {
      lines.length = 0;
      for (const outcome of [
        await overSocket(client, query, variables),
        await overSse(server.url, query, variables),
      ]) {
        expect(outcome.codes.length, JSON.stringify(outcome)).toBeGreaterThan(0);
        for (const code of outcome.codes) {
          expect(['BAD_USER_INPUT', 'GRAPHQL_VALIDATION_FAILED', 'NOT_FOUND']).toContain(code);
        }
      }
      const loud = lines.filter((line) => (line.level as number) > 30);
      expect(loud).toEqual([]);
      for (const line of lines) expect(JSON.stringify(line)).not.toMatch(/"stack"|\n\s+at /);
    });
  }
});
