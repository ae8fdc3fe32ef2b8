/**
 * GraphiQL renders and runs a query in headless Chromium with every outside request blocked: the
 * page must not need a CDN. Skipped where /usr/bin/chromium is missing, except in CI, which must
 * install it (apt-get install chromium).
 */
import { get as httpGet } from 'node:http';
import type { Browser } from 'playwright-core';
import { canRunChromium, launchChromium } from '../support/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';

/**
 * Page-side checks are passed as source text: functions written here would be compiled by vitest,
 * which may add helpers that do not exist in the page.
 */
const PAGE_TEXT = `document.body.innerText.replace(/\\s+/g, ' ')`;
/** The editors render spaces as no-break spaces, so whitespace is normalised first. */
const pageTextIncludes = (text: string) => `${PAGE_TEXT}.includes(${JSON.stringify(text)})`;

describe.skipIf(!canRunChromium)('GraphiQL in a browser, offline', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startTestServer('pglite'), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('renders from the server alone and runs the default query', { timeout: 60_000 }, async () => {
    const page = await browser.newPage();
    // Every request the page makes must go to our server (blob: and data: are the page's own).
    const outside: string[] = [];
    page.on('request', (request) => {
      const url = request.url();
      if (!url.startsWith(server.origin) && !/^(blob|data):/.test(url)) outside.push(url);
    });
    const failed: string[] = [];
    page.on('requestfailed', (request) => failed.push(request.url()));

    await page.goto(server.url, { waitUntil: 'load' });
    expect(await page.title()).toBe('CAS Runtime API');
    // Rendered once the editor holds the default document.
    await page.waitForFunction(pageTextIncludes('query Agents'), undefined, {
      timeout: 30_000,
    });

    // The default document has two operations: GraphiQL asks which one to run.
    await page.click('.graphiql-execute-button');
    await page.getByRole('menuitem', { name: 'Agents' }).click();
    await page.waitForFunction(pageTextIncludes('"marketer"'), undefined, {
      timeout: 30_000,
    });
    const text = await page.evaluate<string>(PAGE_TEXT);
    expect(text).toContain('"agents"');
    expect(text).toContain('"status": "IDLE"');
    expect(outside).toEqual([]);
    expect(failed).toEqual([]);
  });

  it('runs a subscription over graphql-ws on the same URL', { timeout: 60_000 }, async () => {
    const task = await server.runtime.executeTask({
      agentId: 'qa',
      action: 'wait',
      input: { ms: 1500, steps: 3 },
    });
    const page = await browser.newPage();
    const sockets: string[] = [];
    page.on('websocket', (socket) => sockets.push(socket.url()));
    const query = `subscription { taskUpdated(id: "${task.id}") { status progress } }`;
    await page.goto(`${server.url}?query=${encodeURIComponent(query)}`, { waitUntil: 'load' });
    await page.waitForFunction(pageTextIncludes('subscription { taskUpdated'), undefined, {
      timeout: 30_000,
    });
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(pageTextIncludes('"status": "SUCCEEDED"'), undefined, { timeout: 30_000 });
    expect(await page.evaluate<string>(PAGE_TEXT)).toContain('"progress": 1');
    expect(sockets).toEqual([server.url.replace(/^http/, 'ws')]);
  });

  it('is configured to run subscriptions over graphql-ws on the same URL', async () => {
    const html = await (await fetch(server.url, { headers: { accept: 'text/html' } })).text();
    expect(html).toContain('"subscriptionsProtocol":"WS"');
  });
});

describe('GraphiQL page delivery', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('pglite');
  });
  afterAll(() => server?.close());

  /** node's fetch decompresses; the raw bytes on the wire come from node:http. */
  const getRaw = (headers: Record<string, string>) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; bytes: number }>(
      (resolve, reject) => {
        const request = httpGet(server.url, { headers: { accept: 'text/html', ...headers } }, (response) => {
          let bytes = 0;
          response.on('data', (chunk: Buffer) => (bytes += chunk.length));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, headers: response.headers, bytes }),
          );
        });
        request.on('error', reject);
      },
    );

  it('is served compressed per Accept-Encoding, with an ETag, and 304 when unchanged', async () => {
    const plain = await getRaw({});
    const gzip = await getRaw({ 'accept-encoding': 'gzip' });
    const br = await getRaw({ 'accept-encoding': 'gzip, deflate, br' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(br.headers['content-encoding']).toBe('br');
    expect(gzip.bytes).toBeLessThan(plain.bytes / 3);
    expect(br.bytes).toBeLessThan(gzip.bytes);
    console.log(`[GraphiQL page] identity ${plain.bytes} B, gzip ${gzip.bytes} B, br ${br.bytes} B`);

    const etag = String(br.headers.etag);
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(br.headers['cache-control']).toBe('no-cache');
    expect(br.headers.vary).toContain('Accept-Encoding');
    const revalidated = await getRaw({ 'accept-encoding': 'br', 'if-none-match': etag });
    expect(revalidated.status).toBe(304);
    expect(revalidated.bytes).toBe(0);

    // What the browser renders after decompression is the GraphiQL page.
    const html = await (await fetch(server.url, { headers: { accept: 'text/html' } })).text();
    expect(html).toContain('<title>CAS Runtime API</title>');
  });
});

describe('GraphiQL and introspection in production', () => {
  const introspect = (url: string) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: '{ __schema { queryType { name } } }' }),
    }).then(async (response) => ({ status: response.status, body: await response.json() }));

  const PRODUCTION_ENV = {
    NODE_ENV: 'production',
    CAS_AUTH: 'auto',
    SUPABASE_JWT_SECRET: 'graphiql-test-secret-graphiql-test-secret',
  };

  it(
    'are off with NODE_ENV=production, and on again with CAS_GRAPHIQL=true',
    { timeout: 120_000 },
    async () => {
      // Production needs authentication configured; anonymous callers may still ask for __typename.
      const production = await startTestServer('pglite', { env: PRODUCTION_ENV });
      try {
        const page = await fetch(production.url, { headers: { accept: 'text/html' } });
        expect(page.headers.get('content-type') ?? '').not.toContain('text/html');
        await page.body?.cancel();
        const refused = await introspect(production.url);
        expect(refused.status).toBe(400);
        expect(refused.body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
        expect(refused.body.errors[0].message).toMatch(/introspection/i);
        // __typename is not introspection of the schema.
        const typename = await fetch(production.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ __typename }' }),
        });
        expect(await typename.json()).toEqual({ data: { __typename: 'Query' } });
      } finally {
        await production.close();
      }

      const optedIn = await startTestServer('pglite', {
        env: { ...PRODUCTION_ENV, CAS_GRAPHIQL: 'true' },
      });
      try {
        const page = await fetch(optedIn.url, { headers: { accept: 'text/html' } });
        expect(page.headers.get('content-type')).toContain('text/html');
        await page.body?.cancel();
        expect((await introspect(optedIn.url)).body).toEqual({
          data: { __schema: { queryType: { name: 'Query' } } },
        });
      } finally {
        await optedIn.close();
      }
    },
  );
});
