/**
 * Browser protections at the HTTP and WebSocket level: requests a page on another origin can make
 * without a CORS preflight (form posts, multipart, GETs without custom headers) run nothing; CORS
 * answers only the origins of CAS_CORS_ORIGINS; WebSocket upgrades from other origins are refused.
 * (browser.test.ts repeats the attack from a real Chromium page.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { data, errorCodes, startTestServer, type TestServer } from './harness.js';

const FRIEND = 'https://app.example.com';
const STRANGER = 'https://evil.example.net';
const REGISTER = 'mutation { registerAgent(input: { id: "forged", name: "x", role: "y" }) { id } }';

/** The upgrade's HTTP status: 101 when accepted, else the refusal's. */
function upgradeStatus(url: string, origin?: string) {
  return new Promise<number>((resolve, reject) => {
    const socket = new WebSocket(url, 'graphql-transport-ws', origin ? { origin } : {});
    socket.once('upgrade', (response) => {
      resolve(response.statusCode ?? 0);
      socket.close();
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      response.resume();
    });
    socket.once('error', (error) => reject(error));
  });
}

describe('browser protections', () => {
  let server: TestServer;
  let wsUrl: string;
  const agentIds = async () =>
    (await data(server.url, '{ agents { id } }')).agents.map((a: { id: string }) => a.id);

  beforeAll(async () => {
    server = await startTestServer('pglite', { env: { CAS_CORS_ORIGINS: FRIEND } });
    wsUrl = server.url.replace(/^http/, 'ws');
  });
  afterAll(() => server?.close());

  describe('CSRF', () => {
    it('refuses form-encoded and multipart posts with 415 and runs nothing', async () => {
      const form = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ query: REGISTER }).toString(),
      });
      const multipart = new FormData();
      multipart.set('query', REGISTER);
      const upload = await fetch(server.url, { method: 'POST', body: multipart });
      // Even with a CSRF header (a script, not a form), form encodings are not GraphQL bodies here.
      const withHeader = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-graphql-yoga-csrf': '1' },
        body: new URLSearchParams({ query: REGISTER }).toString(),
      });
      for (const response of [form, upload, withHeader]) {
        expect(response.status).toBe(415);
        expect((await response.json()).errors[0].extensions.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      }
      expect(await agentIds()).not.toContain('forged');
    });

    it('GET needs a header a form cannot set: 403 FORBIDDEN without, 200 with', async () => {
      const get = (headers: Record<string, string>) =>
        fetch(`${server.url}?query=${encodeURIComponent('{ health { ok } }')}`, {
          headers: { accept: 'application/graphql-response+json', ...headers },
        });
      const bare = await get({});
      expect(bare.status).toBe(403);
      expect((await bare.json()).errors[0].extensions.code).toBe('FORBIDDEN');
      for (const header of ['x-graphql-yoga-csrf', 'apollo-require-preflight', 'x-apollo-operation-name']) {
        const response = await get({ [header]: 'Q' });
        expect(response.status, header).toBe(200);
        expect(await response.json()).toEqual({ data: { health: { ok: true } } });
      }
    });

    it('JSON posts need no extra header (browsers preflight them cross-origin)', async () => {
      const response = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ health { ok } }' }),
      });
      expect(response.status).toBe(200);
    });
  });

  describe('CORS', () => {
    const preflight = (origin: string) =>
      fetch(server.url, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type, authorization',
        },
      });
    const post = (origin: string) =>
      fetch(server.url, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ health { ok } }' }),
      });

    it('answers a listed origin with exactly that origin and credentials', async () => {
      for (const response of [await preflight(FRIEND), await post(FRIEND)]) {
        expect(response.headers.get('access-control-allow-origin')).toBe(FRIEND);
        expect(response.headers.get('access-control-allow-credentials')).toBe('true');
        expect(response.headers.get('vary')).toMatch(/Origin/);
      }
      expect((await preflight(FRIEND)).headers.get('access-control-allow-headers')).toContain(
        'authorization',
      );
    });

    it('gives other origins no CORS headers at all (never an echo, never *)', async () => {
      for (const response of [await preflight(STRANGER), await post(STRANGER)]) {
        expect(response.headers.get('access-control-allow-origin')).toBeNull();
        expect(response.headers.get('access-control-allow-credentials')).toBeNull();
      }
    });
  });

  describe('WebSocket origins', () => {
    it('refuses upgrades from unlisted origins with 403; accepts listed, same-origin and absent', async () => {
      expect(await upgradeStatus(wsUrl, STRANGER)).toBe(403);
      expect(await upgradeStatus(wsUrl, 'null')).toBe(403);
      expect(await upgradeStatus(wsUrl, FRIEND)).toBe(101);
      expect(await upgradeStatus(wsUrl, server.origin)).toBe(101);
      expect(await upgradeStatus(wsUrl)).toBe(101);
    });
  });

  it('a listed origin still runs mutations over JSON (the allow-list is not a block-list)', async () => {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { origin: FRIEND, 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation { resetAgentState(agentId: "qa") }' }),
    });
    expect(errorCodes({ status: response.status, contentType: null, body: await response.json() })).toEqual(
      [],
    );
  });
});
