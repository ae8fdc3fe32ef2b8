/**
 * Malformed traffic against the real server process: 2,000 generated bad requests (seeded, so a
 * failure replays) over HTTP, raw TCP and WebSocket. The server must stay up, never answer 5xx
 * (nor a 200 whose errors say INTERNAL_SERVER_ERROR, nor close a WebSocket with 1011), and its
 * memory must come back near its baseline.
 */
import { request, Agent } from 'node:http';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createReliabilityDatabase,
  graphql,
  rssMiB,
  sleep,
  startServer,
  type ReliabilityDatabase,
  type ServerProcess,
} from './support.js';

const TOTAL = 2_000;
const PARALLEL = 16;
const PROBE_TIMEOUT_MS = 10_000;
/** RSS after the storm (and a pause) may exceed the baseline by this much. */
const RSS_SLACK_MIB = 96;
const RSS_SETTLE_MS = 30_000;

/** mulberry32: a small seeded PRNG, so every run sends the same requests. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    bytes: (length: number) => Buffer.from(Array.from({ length }, () => Math.floor(next() * 256))),
  };
}
type Random = ReturnType<typeof prng>;

interface Outcome {
  kind: string;
  detail: string;
  /** HTTP status, if the server answered with one. */
  status?: number;
  /** WebSocket close code, if a socket was opened and closed. */
  closeCode?: number;
  /** GraphQL error codes in the answer. */
  codes?: string[];
  /** The connection ended without an answer (reset, closed): allowed for garbage. */
  dropped?: boolean;
  /** The probe itself could not finish (timeout): a failure. */
  failure?: string;
}

type Probe = () => Promise<Outcome>;

const agent = new Agent({ keepAlive: true, maxSockets: PARALLEL });

function httpProbe(
  origin: string,
  kind: string,
  detail: string,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer | string },
): Probe {
  const attempt = (fresh: boolean): Promise<Outcome> =>
    new Promise<Outcome>((resolve) => {
      const url = new URL(options.path ?? '/graphql', origin);
      const req = request(
        url,
        {
          method: options.method ?? 'POST',
          headers: options.headers ?? { 'content-type': 'application/json' },
          agent: fresh ? false : agent,
          timeout: PROBE_TIMEOUT_MS,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', () => resolve({ kind, detail, status: res.statusCode, dropped: true }));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let codes: string[] | undefined;
            try {
              const parsed = JSON.parse(text) as { errors?: { extensions?: { code?: string } }[] };
              codes = parsed.errors?.map((error) => String(error.extensions?.code ?? ''));
            } catch {
              // Not JSON (a 404 page, a 413): only the status matters.
            }
            resolve({ kind, detail, status: res.statusCode, codes });
          });
        },
      );
      req.on('timeout', () => {
        req.destroy();
        resolve({ kind, detail, failure: `no answer within ${PROBE_TIMEOUT_MS} ms` });
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        // A kept-alive socket the server had already closed (after a 413, say): ask again on a
        // new connection, as any HTTP client does.
        if (!fresh && req.reusedSocket && ['ECONNRESET', 'EPIPE'].includes(error.code ?? '')) {
          return void attempt(true).then(resolve);
        }
        const large = Buffer.byteLength(options.body ?? '') > 1_000_000;
        resolve({
          kind,
          detail,
          dropped: true,
          // Over the body limit the server may answer 413 and close before reading it all, so the
          // client fails while still writing. Anything else deserved an answer.
          failure: large ? undefined : `no answer (${error.code ?? error.message})`,
        });
      });
      if (options.body !== undefined) req.write(options.body);
      req.end();
    });
  return () => attempt(false);
}

/** Writes bytes on a fresh TCP connection and reads what comes back until the server closes it. */
function tcpProbe(port: number, kind: string, detail: string, bytes: Buffer): Probe {
  return () =>
    new Promise<Outcome>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (outcome: Partial<Outcome>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        const text = Buffer.concat(chunks).toString('latin1');
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1]) || undefined;
        resolve({ kind, detail, status, dropped: status === undefined, ...outcome });
      };
      // Garbage may leave the server waiting for more (a request line never ended): after a
      // while with no answer we hang up ourselves, which is fine.
      const timer = setTimeout(() => finish({}), 2_000);
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (/^HTTP\/1\.[01] \d{3}/.test(Buffer.concat(chunks).toString('latin1'))) finish({});
      });
      socket.on('error', () => finish({}));
      socket.on('close', () => finish({}));
      socket.on('connect', () => socket.write(bytes));
    });
}

/** Opens a WebSocket with `protocols`, sends `frames` once open, and waits for the close. */
function wsProbe(
  url: string,
  kind: string,
  detail: string,
  protocols: string | string[] | { header: string } | undefined,
  frames: (Buffer | string)[],
  closeAfterMs = 1_500,
): Probe {
  return () =>
    new Promise<Outcome>((resolve) => {
      // The ws client refuses to send malformed subprotocol lists itself: those go as a raw header.
      const raw = typeof protocols === 'object' && !Array.isArray(protocols) ? protocols.header : null;
      const socket = new WebSocket(
        url.replace(/^http/, 'ws'),
        raw === null ? (protocols as string | string[] | undefined) : undefined,
        {
          handshakeTimeout: PROBE_TIMEOUT_MS,
          headers: raw === null ? {} : { 'sec-websocket-protocol': raw },
        },
      );
      let settled = false;
      const finish = (outcome: Partial<Outcome>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.terminate();
        resolve({ kind, detail, ...outcome });
      };
      // Frames the server ignores leave the socket open: we close it ourselves then.
      const timer = setTimeout(() => finish({ closeCode: 0 }), closeAfterMs + PROBE_TIMEOUT_MS);
      socket.on('unexpected-response', (_req, res) => finish({ status: res.statusCode }));
      socket.on('error', () => finish({ dropped: true }));
      socket.on('close', (code) => finish({ closeCode: code }));
      socket.on('open', () => {
        for (const frame of frames) {
          socket.send(frame, { binary: Buffer.isBuffer(frame) }, () => undefined);
        }
        setTimeout(() => finish({ closeCode: 0 }), closeAfterMs);
      });
    });
}

const VALID = '{ health { ok } }';

/** The 2,000 probes, in a fixed mix of kinds. */
function generateProbes(origin: string, port: number, random: Random): Probe[] {
  const url = `${origin}/graphql`;
  const json = (value: unknown) => JSON.stringify(value);
  const deep = (depth: number, open: string, close: string, inner = '') =>
    open.repeat(depth) + inner + close.repeat(depth);
  const kinds: { kind: string; count: number; make: (i: number) => Probe }[] = [
    {
      kind: 'raw TCP garbage',
      count: 200,
      make: (i) => {
        const variants = [
          () => random.bytes(random.int(1, 4096)),
          () =>
            Buffer.from(
              `${random.pick(['GET', 'POST', 'BREW', '\u0000'])} /graphql HTTP/1.1\r\n${'x'.repeat(random.int(0, 100))}\r\n\r\n`,
            ),
          () =>
            Buffer.from(
              `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: ${random.int(-5, 99999999)}\r\n\r\n{`,
            ),
          () =>
            Buffer.from(
              `POST /graphql HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${random.bytes(20).toString('latin1')}`,
            ),
          () =>
            Buffer.from(
              `GET /graphql HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(random.int(17_000, 80_000))}\r\n\r\n`,
            ),
          () => Buffer.from(`GET /${'%'.repeat(random.int(1, 3000))} HTTP/1.1\r\nHost: x\r\n\r\n`),
        ];
        return tcpProbe(
          port,
          'raw TCP garbage',
          `variant ${i % variants.length}`,
          variants[i % variants.length]!(),
        );
      },
    },
    {
      kind: 'random body bytes',
      count: 250,
      make: () =>
        httpProbe(origin, 'random body bytes', 'application/json', {
          headers: {
            'content-type': random.pick([
              'application/json',
              'application/graphql',
              'text/plain',
              'application/x-www-form-urlencoded',
            ]),
          },
          body: random.bytes(random.int(0, 20_000)),
        }),
    },
    {
      kind: 'truncated JSON',
      count: 250,
      make: () => {
        const full = json({
          query: 'mutation($input: ExecuteTaskInput!) { executeTask(input: $input) { id status } }',
          variables: { input: { agentId: 'qa', action: 'ping', input: { nested: [1, 2, { a: 'b' }] } } },
        });
        return httpProbe(origin, 'truncated JSON', 'cut', {
          body: full.slice(0, random.int(0, full.length - 1)),
        });
      },
    },
    {
      kind: 'wrong types',
      count: 250,
      make: (i) => {
        const bodies = [
          { query: 123 },
          { query: null },
          { query: ['{ health { ok } }'] },
          { query: { health: true } },
          { query: true },
          { query: VALID, variables: 'x' },
          { query: VALID, variables: [1, 2] },
          { query: VALID, variables: 42 },
          { query: VALID, operationName: 7 },
          { query: VALID, operationName: { a: 1 } },
          { query: VALID, extensions: 'nope' },
          [{ query: VALID }, { query: VALID }],
          null,
          'a string',
          12345,
          {},
          { query: 'query($id: ID!) { agent(id: $id) { id } }', variables: { id: { nested: true } } },
          { query: 'query($n: Int) { tasks(first: $n) { totalCount } }', variables: { n: 'ten' } },
          { query: 'query($n: Int) { tasks(first: $n) { totalCount } }', variables: { n: 1e300 } },
          { query: 'query($n: Int) { tasks(first: $n) { totalCount } }', variables: { n: -1 } },
          {
            query: 'query($s: [TaskStatus!]) { tasks(status: $s) { totalCount } }',
            variables: { s: ['NOPE'] },
          },
          {
            query: 'mutation($i: ExecuteTaskInput!) { executeTask(input: $i) { id } }',
            variables: { i: { agentId: 1, action: [] } },
          },
          {
            query: 'mutation($i: ExecuteTaskInput!) { executeTask(input: $i) { id } }',
            variables: { i: { agentId: 'qa', action: 'ping', timeoutMs: -5, maxAttempts: 1e9 } },
          },
          {
            query: 'mutation($d: JSON!) { updateAgentState(agentId: "qa", data: $d) { version } }',
            variables: { d: 'not an object' },
          },
          {
            query: 'query($a: String) { events(after: $a) { pageInfo { hasNextPage } } }',
            variables: { a: '!!!not-a-cursor' },
          },
          { query: '{ task(id: "not-a-uuid") { id } }' },
          { query: '{ logs(from: "yesterday") { pageInfo { hasNextPage } } }' },
        ];
        return httpProbe(origin, 'wrong types', `body ${i % bodies.length}`, {
          body: json(bodies[i % bodies.length]),
        });
      },
    },
    {
      kind: 'deep nesting',
      count: 150,
      make: (i) => {
        const depth = random.int(50, 20_000);
        const variants = [
          () => json({ query: deep(depth, '{ agents ', '}', 'id ') }),
          () =>
            json({
              query: `{ agents { ${deep(Math.min(depth, 60), 'recentTasks { agent { ', '} } ', 'id ')} } }`,
            }),
          () => `{"query":"${VALID}","variables":{"x":${deep(depth, '[', ']')}}}`,
          () => `{"query":"${VALID}","variables":${deep(depth, '{"a":', '}', '1')}}`,
          () => json({ query: `{ agent(id: ${deep(Math.min(depth, 3000), '{a:', '}', '1')}) { id } }` }),
          () =>
            json({ query: `{ ${deep(Math.min(depth, 3000), '...on Query { ', '} ', 'health { ok } ')} }` }),
          () => `${deep(depth, '[', ']')}`,
        ];
        return httpProbe(origin, 'deep nesting', `variant ${i % variants.length}, depth ${depth}`, {
          body: variants[i % variants.length]!(),
        });
      },
    },
    {
      kind: 'giant strings',
      count: 100,
      make: (i) => {
        const size = random.int(100_000, 2_500_000);
        const big = 'x'.repeat(size);
        const variants: (() => { body: string; headers?: Record<string, string> })[] = [
          () => ({ body: json({ query: `{ agent(id: "${big}") { id } }` }) }),
          () => ({
            body: json({ query: 'query($id: ID!) { agent(id: $id) { id } }', variables: { id: big } }),
          }),
          () => ({ body: json({ query: `# ${big}\n${VALID}` }) }),
          () => ({ body: json({ query: VALID, operationName: big }) }),
          () => ({
            body: json({
              query: 'mutation($i: ExecuteTaskInput!) { executeTask(input: $i) { id } }',
              variables: { i: { agentId: 'qa', action: 'ping', input: { blob: big } } },
            }),
          }),
          () => ({ body: json({ query: `{ ${'health { ok } '.repeat(Math.floor(size / 15))} }` }) }),
          () => ({
            body: VALID,
            headers: { 'content-type': 'application/graphql', 'x-request-id': big.slice(0, 12_000) },
          }),
        ];
        const variant = variants[i % variants.length]!();
        return httpProbe(origin, 'giant strings', `variant ${i % variants.length}, ${size} bytes`, variant);
      },
    },
    {
      kind: 'unknown operations',
      count: 300,
      make: (i) => {
        const queries = [
          '{ nope }',
          '{ agents { nope } }',
          '{ health { ok } } { agents { id } }',
          'query A { health { ok } } query B { agents { id } }',
          'mutation { nope }',
          'mutation { executeTask(input: { agentId: "qa", action: "no-such-action" }) { id } }',
          'mutation { executeTask(input: { agentId: "no-such-agent", action: "ping" }) { id } }',
          'mutation { cancelTask(id: "00000000-0000-0000-0000-000000000000") { id } }',
          'subscription { nope }',
          'subscription { taskUpdated(id: "00000000-0000-0000-0000-000000000000") { id } }',
          '{ health @nope { ok } }',
          '{ health(nope: 1) { ok } }',
          'fragment F on Nope { id } { health { ok } }',
          '{ ...Missing }',
          'query Q($v: Nope) { health { ok } }',
          '{ __schema { types { name } } }',
          '{ __type(name: "Nope") { name } }',
          '',
          '   ',
          '{',
          '}}}}',
          'query { agents { id ',
          '{ agents { id } } # trailing',
          '{ a1: health { ok } a2: health { ok } a3: health { ok } a4: health { ok } a5: health { ok } a6: health { ok } a7: health { ok } a8: health { ok } a9: health { ok } a10: health { ok } a11: health { ok } a12: health { ok } a13: health { ok } a14: health { ok } a15: health { ok } a16: health { ok } a17: health { ok } }',
        ];
        const query = queries[i % queries.length]!;
        const operationName = i % 5 === 0 ? random.pick(['Missing', 'A', '', 'B']) : undefined;
        return httpProbe(origin, 'unknown operations', `query ${i % queries.length}`, {
          body: json({ query, operationName }),
        });
      },
    },
    {
      kind: 'methods, media types and paths',
      count: 200,
      make: (i) => {
        const variants: Parameters<typeof httpProbe>[3][] = [
          { method: 'PUT', body: json({ query: VALID }) },
          { method: 'DELETE' },
          { method: 'PATCH', body: json({ query: VALID }) },
          { method: 'OPTIONS' },
          { method: 'GET', path: '/graphql?query=%7B' },
          {
            method: 'GET',
            path: '/graphql?query=mutation%7BexecuteTask(input%3A%7BagentId%3A%22qa%22%2Caction%3A%22ping%22%7D)%7Bid%7D%7D',
          },
          { method: 'GET', path: `/graphql?query=${encodeURIComponent(VALID)}&variables=%7Bnot-json` },
          { method: 'GET', path: `/graphql?query=${encodeURIComponent(VALID)}&extensions=%5B` },
          { method: 'GET', path: '/graphql?%%%%' },
          {
            method: 'POST',
            headers: { 'content-type': 'multipart/form-data; boundary=x' },
            body: '--x\r\nnope\r\n--x--',
          },
          {
            method: 'POST',
            headers: { 'content-type': 'application/json; charset=utf-16' },
            body: json({ query: VALID }),
          },
          { method: 'POST', headers: { 'content-type': 'image/png' }, body: random.bytes(100) },
          { method: 'POST', headers: {}, body: json({ query: VALID }) },
          {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'image/png' },
            body: json({ query: VALID }),
          },
          {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
            body: json({ query: '{ nope }' }),
          },
          {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
            body: random.bytes(50),
          },
          { method: 'POST', path: '/health', body: 'x' },
          { method: 'GET', path: '/ready?x=' + 'y'.repeat(1000) },
          { method: 'GET', path: '/../../etc/passwd' },
          { method: 'GET', path: '/graphql/../../x' },
          { method: 'HEAD', path: '/graphql' },
          { method: 'GET', path: '/.yoga/health' },
          { method: 'POST', path: '/nope', body: json({ query: VALID }) },
        ];
        const variant = variants[i % variants.length]!;
        return httpProbe(origin, 'methods, media types and paths', `variant ${i % variants.length}`, variant);
      },
    },
    {
      kind: 'WebSocket subprotocols',
      count: 100,
      make: (i) => {
        const protocols = [
          'nonsense',
          'graphql-ws',
          ['a', 'b', 'c'],
          { header: 'graphql-transport-ws, graphql-ws' },
          { header: ',,,' },
          { header: 'graphql-transport-ws graphql-transport-ws' },
          { header: '\u00ff\u00fe' },
          undefined,
          'x'.repeat(random.int(1, 4000)),
        ];
        const chosen = protocols[i % protocols.length];
        return wsProbe(url, 'WebSocket subprotocols', `protocols ${i % protocols.length}`, chosen, [
          json({ type: 'connection_init' }),
        ]);
      },
    },
    {
      kind: 'WebSocket frames',
      count: 150,
      make: (i) => {
        const init = json({ type: 'connection_init' });
        const sub = (payload: unknown, id: unknown = '1') => json({ type: 'subscribe', id, payload });
        const variants: (() => (Buffer | string)[])[] = [
          () => ['not json at all'],
          () => [random.bytes(random.int(1, 2000))],
          () => [json({ type: 'nope' })],
          () => [json([1, 2, 3])],
          () => [sub({ query: VALID })],
          () => [init, init],
          () => [init, sub({ query: 123 })],
          () => [init, sub({ query: '{ nope }' })],
          () => [init, sub({ query: 'subscription { taskUpdated(id: "not-a-uuid") { id } }' })],
          () => [init, sub({ query: VALID }, null)],
          () => [init, sub({ query: VALID }), sub({ query: VALID })],
          () => [init, json({ type: 'complete', id: 'never-started' })],
          () => [init, json({ type: 'ping', payload: 'x'.repeat(10_000) })],
          () => [init, sub({ query: `{ agent(id: "${'x'.repeat(1_100_000)}") { id } }` })],
          () => [init, sub({ query: deep(5_000, '{ agents ', '}', 'id ') })],
          () => [init, json({ type: 'subscribe', id: '1' })],
          () => [json({ type: 'connection_init', payload: 'not an object' })],
        ];
        return wsProbe(
          url,
          'WebSocket frames',
          `variant ${i % variants.length}`,
          'graphql-transport-ws',
          variants[i % variants.length]!(),
          300,
        );
      },
    },
    {
      kind: 'WebSocket upgrades',
      count: 50,
      make: (i) => {
        const key = Buffer.from(random.bytes(16)).toString('base64');
        const variants = [
          `GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 99\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
          `GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`,
          `GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n`,
          `POST /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
          `GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
          `GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n${random.bytes(64).toString('latin1')}`,
        ];
        return tcpProbe(
          port,
          'WebSocket upgrades',
          `variant ${i % variants.length}`,
          Buffer.from(variants[i % variants.length]!, 'latin1'),
        );
      },
    },
  ];
  const probes = kinds.flatMap(({ count, make }) => Array.from({ length: count }, (_, i) => make(i)));
  // Shuffle (seeded) so kinds interleave as real abuse would.
  for (let i = probes.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [probes[i], probes[j]] = [probes[j]!, probes[i]!];
  }
  return probes;
}

/** A failure: a 5xx, an internal error inside a 200, a 1011 close, or no answer at all. */
function problemOf(outcome: Outcome): string | null {
  if (outcome.failure) return outcome.failure;
  if (outcome.status !== undefined && outcome.status >= 500) return `HTTP ${outcome.status}`;
  if (outcome.codes?.includes('INTERNAL_SERVER_ERROR')) return 'INTERNAL_SERVER_ERROR in the answer';
  if (outcome.closeCode === 1011) return 'WebSocket closed with 1011 (internal error)';
  return null;
}

describe('malformed traffic', () => {
  let database: ReliabilityDatabase;
  let server: ServerProcess;

  beforeAll(async () => {
    database = await createReliabilityDatabase('malformed');
    server = await startServer({ DATABASE_URL: database.url, CAS_WORKERS: '1' });
  });
  afterAll(async () => {
    agent.destroy();
    await server?.stop();
    await database?.close();
  });

  it('2,000 bad requests: no 5xx, the server stays up, memory returns near its baseline', async () => {
    // Warm up (JIT, pools, caches) with valid traffic before the baseline.
    for (let i = 0; i < 200; i++) {
      const answer = await graphql(server.url, '{ agents { id status recentTasks(first: 2) { id } } }');
      expect(answer.errors).toBeUndefined();
    }
    await sleep(1_000);
    const baseline = await rssMiB(server.pid);

    const port = Number(new URL(server.origin).port);
    const probes = generateProbes(server.origin, port, prng(20261125));
    expect(probes).toHaveLength(TOTAL);
    const outcomes: Outcome[] = [];
    let peak = baseline;
    let next = 0;
    const startedAt = performance.now();
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < probes.length) {
          const probe = probes[next++]!;
          outcomes.push(await probe());
          if (outcomes.length % 100 === 0) peak = Math.max(peak, await rssMiB(server.pid));
        }
      }),
    );
    const seconds = (performance.now() - startedAt) / 1000;

    // The server is still up and serving.
    expect(server.child.exitCode).toBeNull();
    const health = await fetch(`${server.origin}/health`);
    expect(health.status).toBe(200);
    const answer = await graphql(server.url, VALID);
    expect(answer.data).toEqual({ health: { ok: true } });

    // V8 gives memory back lazily (its memory reducer runs after some idle time): wait for it,
    // up to a bound, rather than judging the heap still holding the storm's garbage.
    let after = await rssMiB(server.pid);
    const trajectory = [after];
    for (let waited = 0; waited < RSS_SETTLE_MS && after >= baseline + RSS_SLACK_MIB; waited += 1_000) {
      await sleep(1_000);
      after = await rssMiB(server.pid);
      trajectory.push(after);
    }

    const byKind = new Map<string, { count: number; statuses: Map<string, number> }>();
    for (const outcome of outcomes) {
      const entry = byKind.get(outcome.kind) ?? { count: 0, statuses: new Map() };
      const key =
        outcome.status !== undefined
          ? `HTTP ${outcome.status}`
          : outcome.closeCode !== undefined
            ? `close ${outcome.closeCode}`
            : 'dropped';
      entry.count++;
      entry.statuses.set(key, (entry.statuses.get(key) ?? 0) + 1);
      byKind.set(outcome.kind, entry);
    }
    const lines = [...byKind].map(
      ([kind, { count, statuses }]) =>
        `  ${kind} (${count}): ${[...statuses].map(([key, n]) => `${key} ×${n}`).join(', ')}`,
    );
    console.log(
      `[reliability] malformed traffic: ${outcomes.length} requests in ${seconds.toFixed(1)} s\n${lines.join('\n')}\n` +
        `  RSS: baseline ${baseline.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB, after ${after.toFixed(1)} MiB ` +
        `(samples after the storm: ${trajectory.map((value) => value.toFixed(0)).join(', ')})`,
    );

    const problems = outcomes
      .map((outcome) => ({ outcome, problem: problemOf(outcome) }))
      .filter((entry) => entry.problem !== null)
      .map(({ outcome, problem }) => `${outcome.kind} / ${outcome.detail}: ${problem}`);
    expect(problems.slice(0, 20), `${problems.length} problem(s)`).toEqual([]);
    expect(outcomes).toHaveLength(TOTAL);
    expect(after).toBeLessThan(baseline + RSS_SLACK_MIB);
  }, 240_000);
});
