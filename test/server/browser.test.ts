/**
 * The cross-site attacks of issue 11, from a real browser: a page served from another origin (a
 * second local server on another port) submits HTML forms (form-encoded, multipart, text/plain
 * carrying JSON) and a credentialed fetch to the API, and opens a WebSocket to it. None runs a
 * mutation; the WebSocket is refused. Skipped where /usr/bin/chromium is missing, except in CI.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { canRunChromium, launchChromium } from '../support/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { data, startTestServer, type TestServer } from './harness.js';

const register = (id: string) =>
  `mutation { registerAgent(input: { id: "${id}", name: "x", role: "y" }) { id } }`;

/** The attacker's page: every attack in a script, its outcomes in window.outcomes. */
function attackerPage(api: string): string {
  const ws = api.replace(/^http/, 'ws');
  const textPlainName = JSON.stringify({ query: register('via-text-plain'), padding: '' }).slice(0, -2);
  return `<!doctype html><html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe><iframe name="sink3"></iframe>
<form id="urlencoded" method="POST" action="${api}" target="sink1">
  <input name="query" value='${register('via-urlencoded-form')}'>
</form>
<form id="multipart" method="POST" action="${api}" target="sink2" enctype="multipart/form-data">
  <input name="query" value='${register('via-multipart-form')}'>
</form>
<form id="textplain" method="POST" action="${api}" target="sink3" enctype="text/plain">
  <input name='${textPlainName}' value='"}'>
</form>
<script>
  const loaded = (name) => new Promise((resolve) => document.querySelector('iframe[name=' + name + ']').addEventListener('load', resolve, { once: true }));
  window.outcomes = (async () => {
    const outcomes = {};
    for (const [form, sink] of [['urlencoded', 'sink1'], ['multipart', 'sink2'], ['textplain', 'sink3']]) {
      const done = loaded(sink);
      document.getElementById(form).submit();
      await done;
      outcomes[form] = 'submitted';
    }
    try {
      const response = await fetch(${JSON.stringify(api)}, {
        method: 'POST', credentials: 'include',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: ${JSON.stringify(register('via-credentialed-fetch'))} }),
      });
      outcomes.fetch = 'read ' + response.status;
    } catch (error) {
      outcomes.fetch = 'blocked';
    }
    try {
      const response = await fetch(${JSON.stringify(api)}, {
        method: 'POST', mode: 'no-cors', credentials: 'include',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ query: ${JSON.stringify(register('via-no-cors-fetch'))} }),
      });
      outcomes.noCorsFetch = 'sent (' + response.type + ')';
    } catch (error) {
      outcomes.noCorsFetch = 'blocked';
    }
    outcomes.webSocket = await new Promise((resolve) => {
      const socket = new WebSocket(${JSON.stringify(ws)}, 'graphql-transport-ws');
      socket.onopen = () => {
        socket.send(JSON.stringify({ type: 'connection_init' }));
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: ${JSON.stringify(register('via-websocket'))} } }));
        setTimeout(() => resolve('open'), 1000);
      };
      socket.onclose = (event) => resolve('closed ' + event.code);
    });
    return outcomes;
  })();
</script></body></html>`;
}

describe.skipIf(!canRunChromium)('a page on another origin, in Chromium', () => {
  let server: TestServer;
  let attacker: Server;
  let attackerOrigin: string;
  let browser: Browser;
  const apiStatuses: string[] = [];

  beforeAll(async () => {
    [server, browser] = await Promise.all([startTestServer('pglite'), launchChromium()]);
    attacker = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(attackerPage(server.url));
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerOrigin = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await browser?.close();
    // Absent when beforeAll failed (no Chromium): nothing to wait for.
    if (attacker) await new Promise((resolve) => attacker.close(resolve));
    await server?.close();
  });

  it('runs no mutation from forms or fetch, and its WebSocket is refused', { timeout: 60_000 }, async () => {
    expect(attackerOrigin).not.toBe(server.origin);
    const page = await browser.newPage();
    page.on('response', (response) => {
      if (response.url().startsWith(server.url))
        apiStatuses.push(`${response.request().method()} ${response.status()}`);
    });
    await page.goto(attackerOrigin, { waitUntil: 'load' });
    const outcomes = await page.evaluate<Record<string, string>>('window.outcomes');
    expect(outcomes).toEqual({
      urlencoded: 'submitted',
      multipart: 'submitted',
      textplain: 'submitted',
      fetch: 'blocked', // the preflight gets no CORS headers: the POST is never sent
      noCorsFetch: 'sent (opaque)', // sent, but refused by the server (415)
      webSocket: 'closed 1006', // refused at the upgrade (403)
    });
    // The forms and the no-cors fetch reached the API and were refused; the preflight got no CORS answer.
    expect(apiStatuses.filter((status) => status.startsWith('POST'))).toEqual(
      expect.arrayContaining(['POST 415']),
    );
    expect(apiStatuses.filter((status) => status === 'POST 200')).toEqual([]);

    const { agents } = await data(server.url, '{ agents { id } }');
    expect(
      agents.map((agent: { id: string }) => agent.id).filter((id: string) => id.startsWith('via-')),
    ).toEqual([]);
    expect(agents).toHaveLength(8);
  });
});
