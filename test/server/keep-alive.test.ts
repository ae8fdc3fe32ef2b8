/**
 * WebSocket keep-alive (src/server/websocket.ts): one timer pings every socket; a socket that did
 * not answer the previous ping is terminated, the others stay open.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { keepSocketsAlive } from '../../src/server/websocket.js';

/**
 * Short, so that the test sees several rounds in a second or two; long enough that a busy machine
 * still reads each ping and answers it before the next round (the client answers as soon as its
 * event loop reads the ping).
 */
const PING_INTERVAL_MS = 500;
/** Rounds the answering socket must see after the silent one was dropped. */
const ROUNDS_AFTER_DROP = 2;

it('pings every socket from one timer, terminates one that does not answer, keeps one that does', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  const stop = keepSocketsAlive(wss, PING_INTERVAL_MS);
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const answering = new WebSocket(url);
  const silent = new WebSocket(url, { autoPong: false });
  const pings = { answering: 0, silent: 0 };
  answering.on('ping', () => pings.answering++);
  silent.on('ping', () => pings.silent++);
  try {
    await Promise.all([once(answering, 'open'), once(silent, 'open')]);
    // No close frame: the server terminated the connection.
    const [code] = (await once(silent, 'close')) as [number];
    expect(code).toBe(1006);
    expect(pings.silent).toBe(1);

    const pingsAtDrop = pings.answering;
    expect(pingsAtDrop).toBeGreaterThanOrEqual(1);
    while (pings.answering < pingsAtDrop + ROUNDS_AFTER_DROP) await once(answering, 'ping');
    expect(answering.readyState).toBe(WebSocket.OPEN);
    expect(wss.clients.size).toBe(1);
  } finally {
    stop();
    answering.terminate();
    silent.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
});
