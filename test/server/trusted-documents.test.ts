/**
 * Trusted documents (CAS_TRUSTED_DOCUMENTS) from codegen's persisted-documents.json, and automatic
 * persisted queries as Apollo Client sends them (PersistedQueryLink: hash first, the query after
 * PERSISTED_QUERY_NOT_FOUND), over HTTP and WebSocket.
 */
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache, gql as apolloGql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runExample } from '../../examples/run-task.js';
import manifest from '../../examples/gql/persisted-documents.json' with { type: 'json' };
import { errorCodes, gql, startTestServer, type TestServer } from './harness.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const ARBITRARY = '{ agents { id } }';
const [listAgentsHash, listAgentsText] = Object.entries(manifest).find(([, text]) =>
  text.startsWith('query ListAgents'),
)!;

/** POSTs a hash-only APQ request, as Apollo's PersistedQueryLink sends its first attempt. */
const byHash = (url: string, hash: string, operationName?: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({
      operationName,
      variables: {},
      extensions: { persistedQuery: { version: 1, sha256Hash: hash } },
    }),
  });

/** The first result (or refusal) of one operation over graphql-ws. */
async function overSocket(server: TestServer, query: string) {
  const client = createClient({
    url: server.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
  });
  try {
    return await new Promise<{
      data?: unknown;
      errors?: readonly { extensions?: Record<string, unknown> }[];
    }>((resolve) =>
      client.subscribe(
        { query },
        {
          next: (result) => resolve(result),
          error: (error) =>
            resolve({ errors: Array.isArray(error) ? error : [{ extensions: { message: String(error) } }] }),
          complete: () => undefined,
        },
      ),
    );
  } finally {
    await client.dispose();
  }
}

describe('CAS_TRUSTED_DOCUMENTS=only', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('pglite', { env: { CAS_TRUSTED_DOCUMENTS: 'only' } });
  });
  afterAll(() => server?.close());

  it('runs the codegen client’s documents by hash (the example client)', async () => {
    const task = await runExample(server.url, 'tester', () => undefined);
    expect(task).toMatchObject({ status: 'SUCCEEDED', result: { pong: true } });
    const response = await byHash(server.url, listAgentsHash.replace(/^sha256:/, ''));
    expect(response.status).toBe(200);
    expect((await response.json()).data.agents).toHaveLength(8);
  });

  it('refuses any other document with PERSISTED_QUERY_ONLY (403), and learns nothing from APQ', async () => {
    const arbitrary = await gql(server.url, ARBITRARY);
    expect(arbitrary.status).toBe(403);
    expect(errorCodes(arbitrary)).toEqual(['PERSISTED_QUERY_ONLY']);
    expect(arbitrary.body.data).toBeUndefined();

    // Registering through APQ does not make a document trusted.
    const hash = sha256(ARBITRARY);
    const register = await gql(server.url, ARBITRARY, undefined);
    expect(register.status).toBe(403);
    const withHash = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: ARBITRARY,
        extensions: { persistedQuery: { version: 1, sha256Hash: hash } },
      }),
    });
    expect(withHash.status).toBe(403);
    const later = await byHash(server.url, hash);
    expect((await later.json()).errors[0].extensions.code).toBe('PERSISTED_QUERY_NOT_FOUND');
  });

  it('applies over WebSocket too: trusted text runs, anything else is refused', async () => {
    const trusted = await overSocket(server, listAgentsText);
    expect((trusted.data as { agents: unknown[] }).agents).toHaveLength(8);
    const refused = await overSocket(server, ARBITRARY);
    expect(refused.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_ONLY');
  });
});

describe('CAS_TRUSTED_DOCUMENTS=allow', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('pglite', { env: { CAS_TRUSTED_DOCUMENTS: 'allow' } });
  });
  afterAll(() => server?.close());

  it('runs trusted documents by hash, and other documents for callers allowArbitrary admits', async () => {
    const response = await byHash(server.url, listAgentsHash.replace(/^sha256:/, ''));
    expect((await response.json()).data.agents).toHaveLength(8);
    // allowArbitrary admits every caller until the auth layer narrows it to admins.
    expect((await gql(server.url, ARBITRARY)).body.data.agents).toHaveLength(8);
  });
});

describe('automatic persisted queries (CAS_TRUSTED_DOCUMENTS=off)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('pglite');
  });
  afterAll(() => server?.close());

  it('answers an unknown hash with PERSISTED_QUERY_NOT_FOUND, then learns the query', async () => {
    const query = '{ agents { id status } }';
    const first = await byHash(server.url, sha256(query));
    expect(first.status).toBe(404);
    expect((await first.json()).errors[0]).toMatchObject({
      message: 'PersistedQueryNotFound',
      extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' },
    });
    const mismatch = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query,
        extensions: { persistedQuery: { version: 1, sha256Hash: sha256('other') } },
      }),
    });
    expect((await mismatch.json()).errors[0].extensions.code).toBe('PERSISTED_QUERY_MISMATCH');
    const withQuery = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query,
        extensions: { persistedQuery: { version: 1, sha256Hash: sha256(query) } },
      }),
    });
    expect((await withQuery.json()).data.agents).toHaveLength(8);
    const again = await byHash(server.url, sha256(query));
    expect((await again.json()).data.agents).toHaveLength(8);
  });

  it('works with Apollo Client’s PersistedQueryLink: hash, then query, then hash only', async () => {
    const sent: { query?: string; hash?: string }[] = [];
    const recordingFetch: typeof fetch = async (input, init) => {
      const body = JSON.parse(String(init?.body)) as {
        query?: string;
        extensions?: { persistedQuery?: { sha256Hash: string } };
      };
      sent.push({ query: body.query, hash: body.extensions?.persistedQuery?.sha256Hash });
      return fetch(input, init);
    };
    const client = new ApolloClient({
      cache: new InMemoryCache(),
      link: new PersistedQueryLink({ sha256 }).concat(
        new HttpLink({ uri: server.url, fetch: recordingFetch }),
      ),
    });
    const query = apolloGql`
      query ApolloAgents {
        agents {
          id
          name
        }
      }
    `;
    const first = await client.query({ query, fetchPolicy: 'network-only' });
    expect((first.data as { agents: unknown[] }).agents).toHaveLength(8);
    const second = await client.query({ query, fetchPolicy: 'network-only' });
    expect((second.data as { agents: unknown[] }).agents).toHaveLength(8);
    expect(sent.map((request) => [Boolean(request.query), Boolean(request.hash)])).toEqual([
      [false, true], // hash only: PERSISTED_QUERY_NOT_FOUND
      [true, true], // the query with its hash: run and remembered
      [false, true], // hash only again: found
    ]);
    client.stop();
  });
});
