/**
 * GraphiQL renders and runs a query in headless Chromium with every outside request blocked: the
 * page must not need a CDN. Skipped where /usr/bin/chromium is missing, except in CI, which must
 * install it (apt-get install chromium).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';

/**
 * Page-side checks are passed as source text: functions written here would be compiled by vitest,
 * which may add helpers that do not exist in the page.
 */
const PAGE_TEXT = `document.body.innerText.replace(/\\s+/g, ' ')`;
/** The editors render spaces as no-break spaces, so whitespace is normalised first. */
const pageTextIncludes = (text: string) => `${PAGE_TEXT}.includes(${JSON.stringify(text)})`;

const isCi = !['', '0', 'false'].includes((process.env.CI ?? '').trim().toLowerCase());

describe.skipIf(!existsSync(CHROMIUM) && !isCi)('GraphiQL in a browser, offline', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      startTestServer('pglite'),
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      }),
    ]);
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
