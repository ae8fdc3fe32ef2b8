/**
 * Subscriptions over graphql-ws against the real server process (src/server/main.ts, API only):
 * - commit-to-client latency: N clients (1, 100, 1,000; one WebSocket each) subscribed to
 *   `events(types: ["state_updated"])`; the benchmark writes agent state versions one at a time
 *   through a runtime of its own (one transaction each: the state row, its event, the NOTIFY) and
 *   measures from the moment the write's commit returned to the moment each client got the event;
 * - server CPU per subscribe (warm): the server process's CPU time (utime + stime of
 *   /proc/<pid>/stat) over N subscribes sent on sockets already open and acknowledged, after a
 *   warm-up round, until its cas_graphql_subscriptions_active gauge counts all of them; minus what
 *   the idle server spent over the same wall time; divided by N;
 * - memory per idle subscription: the server's RSS with 1,000 and with 5,000 idle subscribed
 *   connections, divided by the difference (connection and subscription together); then a few
 *   events, one at a time, each timed until all 5,000 have it.
 * The latency and idle rows run against a peer too (bench/servers/plain-ws-fanout.ts: the same
 * events written to every socket with nothing else done), count by count right after CAS, so that
 * what the machine and the clients cost is a number beside what CAS costs.
 * The clients run in the benchmark process: with 1,000 of them, the last one's latency includes
 * the time this one process takes to read the 999 messages before it.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { loadConfig } from '../src/config.js';
import { schema } from '../src/graphql/schema.js';
import { silentLogger } from '../src/logger.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { readFile } from 'node:fs/promises';
import { BENCH_QUOTAS_OFF, startChild, type Child } from './lib/child.js';
import { freePort } from '../test/support/net.js';
import { cpuMs } from './lib/machine.js';
import { progress, sleep } from './lib/progress.js';
import { summarize, type LatencySummary } from './lib/stats.js';

export interface SubscriptionSettings {
  subscriberCounts: number[];
  events: number;
  idleConnections: number[];
  /** Events timed one after another to all idle subscribers at the larger count. */
  fanOutEvents: number;
  /** Subscribes measured for the CPU row, and the open sockets they are spread over. */
  cpuSubscribes: number;
  cpuSockets: number;
}

export interface SubscribeCpu {
  subscribes: number;
  sockets: number;
  /** Server CPU (user + system) from the first subscribe sent to the gauge counting the last. */
  cpuMs: number;
  wallMs: number;
  /** The idle server's CPU over the same wall time, measured just before and subtracted. */
  idleCpuMs: number;
  perSubscribeMs: number;
}

export interface SubscriptionLatencyRun {
  subscribers: number;
  events: number;
  latency: LatencySummary;
  /** Deliveries that did not arrive within the per-event time limit. */
  missing: number;
  /**
   * CPU per delivery (event × subscriber) over the timed events, in µs: the server's (from
   * /proc/<pid>/stat) and the benchmark process's, which reads every client's messages.
   */
  serverCpuUsPerDelivery?: number;
  benchCpuUsPerDelivery?: number;
}

export interface SubscriptionMemory {
  connections: [number, number];
  rssMiB: [number, number];
  /** (RSS at the larger count - RSS at the smaller) / difference in connections. */
  perSubscriptionKiB: number;
  /** One event fanned out to every idle subscriber at the larger count: when the last got it (median). */
  fanOutToAllMs: number;
  /** Each fan-out event's time from its commit until the last subscriber got it. */
  fanOutMs: number[];
}

export interface SubscriptionResults {
  measured: boolean;
  note: string;
  fields: string[];
  query?: string;
  latency?: SubscriptionLatencyRun[];
  memory?: SubscriptionMemory;
  subscribeCpu?: SubscribeCpu;
  /** The same latency and idle rows against bench/servers/plain-ws-fanout.ts. */
  peer?: { latency: SubscriptionLatencyRun[]; memory: SubscriptionMemory };
}

const SUBSCRIPTION = 'subscription { events(types: ["state_updated"]) { cursor type payload } }';
const EVENT_TIMEOUT_MS = 15_000;

/**
 * Runs a full garbage collection in `server` through its inspector (started with
 * `--inspect=127.0.0.1:0`, which prints its address on stderr): RSS then holds what the idle
 * subscriptions keep, not the garbage their subscribes left for a collection that comes whenever
 * V8 likes (under load, later; 6.8 to 13.8 KiB per subscription across runs without it).
 */
async function collectGarbage(server: Child): Promise<void> {
  const address = /Debugger listening on (ws:\/\/\S+)/.exec(server.output())?.[1];
  if (!address) throw new Error('the server did not print its inspector address');
  const inspector = new WebSocket(address);
  try {
    await new Promise((resolve, reject) => inspector.once('open', resolve).once('error', reject));
    inspector.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
    await new Promise<void>((resolve, reject) => {
      inspector.on('message', (data) => {
        if ((JSON.parse(String(data)) as { id?: number }).id === 1) resolve();
      });
      inspector.once('close', () => reject(new Error('the inspector closed before the collection ended')));
    });
  } finally {
    inspector.close();
  }
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
}

interface EventMessage {
  events: { payload: { version: number } | null };
}

/** Subscribers that record when each event (a state version) arrived, by performance.now(). */
class Subscribers {
  readonly clients: Client[] = [];
  /** Arrival times of each state version, across clients. */
  readonly arrivals = new Map<number, number[]>();
  /** Clients that have received at least one event: those are live. */
  private live = 0;
  private readonly waiters = new Map<number, () => void>();
  errors = 0;
  /** Close codes of sockets that closed while the group was open (code → sockets). */
  readonly closes = new Map<number, number>();

  constructor(private readonly url: string) {}

  get size() {
    return this.clients.length;
  }

  get liveCount() {
    return this.live;
  }

  /** Opens `count` more clients, `batch` at a time, each with one subscription. */
  async open(count: number, batch = 100): Promise<void> {
    for (let done = 0; done < count; done += batch) {
      const opened = Array.from({ length: Math.min(batch, count - done) }, () => this.openOne());
      await Promise.all(opened);
    }
  }

  private async openOne(): Promise<void> {
    let seenAny = false;
    await new Promise<void>((resolve, reject) => {
      const client = createClient({
        url: this.url,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        on: {
          connected: () => resolve(),
          error: reject,
          closed: (event) => {
            const code = (event as { code?: number }).code ?? 0;
            this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
          },
        },
      });
      this.clients.push(client);
      client.subscribe<EventMessage>(
        { query: SUBSCRIPTION },
        {
          next: (result) => {
            const now = performance.now();
            if (!seenAny) {
              seenAny = true;
              this.live++;
            }
            const version = result.data?.events.payload?.version;
            if (version === undefined) return;
            const times = this.arrivals.get(version) ?? [];
            times.push(now);
            this.arrivals.set(version, times);
            if (times.length === this.clients.length) this.waiters.get(version)?.();
          },
          error: () => {
            this.errors++;
          },
          complete: () => undefined,
        },
      );
    });
  }

  /** Resolves once every client has state version `version`, or false after the time limit. */
  waitForAll(version: number, timeoutMs = EVENT_TIMEOUT_MS): Promise<boolean> {
    if ((this.arrivals.get(version)?.length ?? 0) >= this.clients.length) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(version);
        resolve(false);
      }, timeoutMs);
      this.waiters.set(version, () => {
        clearTimeout(timer);
        this.waiters.delete(version);
        resolve(true);
      });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.dispose()));
    this.clients.length = 0;
  }
}

/** What the server says it holds (its /metrics gauges), for a failure message. */
async function serverGauges(port: number): Promise<string> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => /^cas_(graphql_subscriptions_active|websocket_connections)\b/.test(line))
      .join('; ');
  } catch (error) {
    return `metrics unavailable: ${String(error)}`;
  }
}

/** The server's cas_graphql_subscriptions_active gauge. */
async function activeSubscriptions(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^cas_graphql_subscriptions_active(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? NaN);
}

/**
 * Server CPU per warm subscribe: `sockets` clients connected and acknowledged, a warm-up round of
 * subscribes (then completed), the idle server's CPU rate over a second, then `subscribes`
 * subscriptions sent at once, spread over the sockets, timed by the server's CPU clock until its
 * gauge counts them all. The gauge is read every 50 ms; each read is one small HTTP request, far
 * below the resolution of the measurement.
 */
async function measureSubscribeCpu(
  url: string,
  port: number,
  pid: number,
  subscribes: number,
  sockets: number,
): Promise<SubscribeCpu> {
  const clients = await Promise.all(
    Array.from(
      { length: sockets },
      () =>
        new Promise<Client>((resolve, reject) => {
          const client: Client = createClient({
            url,
            webSocketImpl: WebSocket,
            retryAttempts: 0,
            lazy: false,
            on: { connected: () => resolve(client), error: reject },
          });
        }),
    ),
  );
  const sink = { next: () => undefined, error: () => undefined, complete: () => undefined };
  const subscribeAll = (count: number) =>
    Array.from({ length: count }, (_, i) => clients[i % sockets]!.subscribe({ query: SUBSCRIPTION }, sink));
  const untilActive = async (count: number) => {
    const deadline = performance.now() + 120_000;
    while ((await activeSubscriptions(port)) < count) {
      if (performance.now() > deadline) throw new Error(`the server never counted ${count} subscriptions`);
      await sleep(50);
    }
  };
  try {
    const base = await activeSubscriptions(port);
    // Warm-up: the same operation, so every code path and cache it takes is hot.
    const warm = subscribeAll(Math.min(subscribes, 200));
    await untilActive(base + warm.length);
    for (const stop of warm) stop();
    while ((await activeSubscriptions(port)) > base) await sleep(50);
    await sleep(500);
    const idleStart = await cpuMs(pid);
    const idleWallStart = performance.now();
    await sleep(1_000);
    const idleRate = ((await cpuMs(pid)) - idleStart) / (performance.now() - idleWallStart);

    const cpuStart = await cpuMs(pid);
    const wallStart = performance.now();
    const measured = subscribeAll(subscribes);
    await untilActive(base + subscribes);
    const cpu = (await cpuMs(pid)) - cpuStart;
    const wallMs = performance.now() - wallStart;
    for (const stop of measured) stop();
    const idleCpuMs = idleRate * wallMs;
    return {
      subscribes,
      sockets,
      cpuMs: cpu,
      wallMs,
      idleCpuMs,
      perSubscribeMs: Math.max(0, cpu - idleCpuMs) / subscribes,
    };
  } finally {
    await Promise.all(clients.map((client) => client.dispose()));
  }
}

/**
 * Writes until every client has received an event: a subscription is live only once the server
 * has set it up, which the protocol does not acknowledge.
 */
async function untilLive(
  group: Subscribers,
  write: () => Promise<{ version: number }>,
  port: number,
  timeoutMs = 60_000,
) {
  const deadline = performance.now() + timeoutMs;
  while (group.liveCount < group.size) {
    if (performance.now() > deadline) {
      const closes = [...group.closes].map(([code, n]) => `${n} closed with ${code}`).join(', ');
      throw new Error(
        `only ${group.liveCount} of ${group.size} subscribers went live ` +
          `(${group.errors} subscription errors${closes ? `; ${closes}` : ''}; server: ${await serverGauges(port)})`,
      );
    }
    await write();
    await sleep(200);
  }
}

/** A server the subscription rows run against: the API, or the plain fan-out peer beside it. */
interface SubscriptionServer {
  url: string;
  port: number;
  process: Child;
}

type StateWrite = () => Promise<{ version: number; committedAt: number }>;

/**
 * Commit-to-client latency with `count` subscribers of `server`: `events` writes one at a time, each
 * after every client has the one before.
 */
async function measureLatency(
  server: SubscriptionServer,
  count: number,
  events: number,
  write: StateWrite,
): Promise<SubscriptionLatencyRun> {
  const group = new Subscribers(server.url);
  try {
    await group.open(count);
    await untilLive(group, write, server.port);
    const committed: { version: number; committedAt: number }[] = [];
    let missing = 0;
    const serverCpuStart = await cpuMs(server.process.pid);
    const benchCpuStart = process.cpuUsage();
    for (let k = 0; k < events; k++) {
      const sent = await write();
      committed.push(sent);
      if (!(await group.waitForAll(sent.version))) {
        missing += count - (group.arrivals.get(sent.version)?.length ?? 0);
      }
      await sleep(10);
    }
    const benchCpu = process.cpuUsage(benchCpuStart);
    const deliveries = count * events;
    const serverCpuUsPerDelivery = (((await cpuMs(server.process.pid)) - serverCpuStart) * 1000) / deliveries;
    const samples = committed.flatMap(({ version, committedAt }) =>
      (group.arrivals.get(version) ?? []).map((time) => Math.max(0, time - committedAt)),
    );
    return {
      subscribers: count,
      events,
      latency: summarize(samples),
      missing,
      serverCpuUsPerDelivery,
      benchCpuUsPerDelivery: (benchCpu.user + benchCpu.system) / deliveries,
    };
  } finally {
    await group.close();
  }
}

/**
 * RSS per idle subscription (between `fewer` and `more` subscribed connections), then
 * `fanOutEvents` events, one at a time, to all `more` of them.
 */
async function measureIdle(
  server: SubscriptionServer,
  [fewer, more]: [number, number],
  fanOutEvents: number,
  write: StateWrite,
): Promise<SubscriptionMemory> {
  const idle = new Subscribers(server.url);
  const settledRss = async () => {
    await sleep(3_000);
    await collectGarbage(server.process);
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      samples.push(await rssMiB(server.process.pid));
      await sleep(500);
    }
    return summarize(samples).p50;
  };
  try {
    await idle.open(fewer, 200);
    await untilLive(idle, write, server.port);
    const rssFewer = await settledRss();
    progress(
      `subscriptions: ${more} idle subscribed connections (RSS at ${fewer}: ${rssFewer.toFixed(1)} MiB)`,
    );
    await idle.open(more - fewer, 200);
    await untilLive(idle, write, server.port);
    const rssMore = await settledRss();
    const fanOutMs: number[] = [];
    for (let k = 0; k < fanOutEvents; k++) {
      const sent = await write();
      if (!(await idle.waitForAll(sent.version, 60_000))) {
        const got = idle.arrivals.get(sent.version)?.length ?? 0;
        throw new Error(`only ${got} of ${more} idle subscribers got the event`);
      }
      fanOutMs.push(Math.max(...idle.arrivals.get(sent.version)!) - sent.committedAt);
      await sleep(FAN_OUT_PAUSE_MS);
    }
    return {
      connections: [fewer, more],
      rssMiB: [rssFewer, rssMore],
      perSubscriptionKiB: ((rssMore - rssFewer) * 1024) / (more - fewer),
      fanOutToAllMs: summarize(fanOutMs).p50,
      fanOutMs,
    };
  } finally {
    await idle.close();
  }
}

/** Between fan-out events: the machine settles from one before the next is timed. */
const FAN_OUT_PAUSE_MS = 500;

const describeLatency = (label: string, run: SubscriptionLatencyRun) =>
  `subscriptions: ${label}, ${run.subscribers} subscriber(s): commit-to-client p50 ${run.latency.p50.toFixed(2)} ms, ` +
  `p99 ${run.latency.p99.toFixed(2)} ms${run.missing ? `, ${run.missing} missing` : ''}; CPU per delivery: ` +
  `server ${run.serverCpuUsPerDelivery?.toFixed(1)} µs, benchmark clients ${run.benchCpuUsPerDelivery?.toFixed(1)} µs`;

const describeIdle = (label: string, memory: SubscriptionMemory) =>
  `subscriptions: ${label}: RSS ${memory.rssMiB[0].toFixed(1)} → ${memory.rssMiB[1].toFixed(1)} MiB: ` +
  `${memory.perSubscriptionKiB.toFixed(1)} KiB per idle subscription; one event reached all ` +
  `${memory.connections[1]} in ${memory.fanOutMs.map((ms) => ms.toFixed(0)).join(', ')} ms`;

export async function runSubscriptions(
  databaseUrl: string,
  settings: SubscriptionSettings,
): Promise<SubscriptionResults> {
  const fields = Object.keys(schema.getSubscriptionType()?.getFields() ?? {});
  if (!fields.includes('events')) {
    const note = `not measured yet: the schema has no \`events\` subscription (fields: ${fields.join(', ') || 'none'})`;
    progress(`subscriptions: ${note}`);
    return { measured: false, note, fields };
  }

  const runtime = await createRuntime({
    config: loadConfig({ DATABASE_URL: databaseUrl, CAS_WORKERS: '0', LOG_LEVEL: 'silent' }),
    logger: silentLogger(),
  });
  /** One state write; resolves with its version and the time its commit returned. */
  const write: StateWrite = async () => {
    const state = await runtime.updateAgentState('marketer', { at: Date.now() });
    return { version: state.version, committedAt: performance.now() };
  };
  // For collectGarbage before the memory samples; idle otherwise (no session attached).
  const inspectable = `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:0`.trim();
  const servers: Child[] = [];
  const startServer = async (entry: string, env: Record<string, string>, readyText: string) => {
    const port = await freePort();
    const child = await startChild(
      entry,
      { DATABASE_URL: databaseUrl, PORT: String(port), HOST: '127.0.0.1', NODE_OPTIONS: inspectable, ...env },
      readyText,
    );
    servers.push(child);
    return { url: `ws://127.0.0.1:${port}/graphql`, port, process: child };
  };
  try {
    const cas = await startServer(
      'src/server/main.ts',
      // Thousands of subscribers from one address on purpose: per-caller quotas off.
      { CAS_WORKERS: '0', ...BENCH_QUOTAS_OFF, LOG_LEVEL: 'info' },
      'CAS Runtime API ready',
    );
    const peer = await startServer('bench/servers/plain-ws-fanout.ts', {}, 'plain ws fan-out listening');

    progress(
      `subscriptions: server CPU per subscribe, ${settings.cpuSubscribes} over ${settings.cpuSockets} open sockets`,
    );
    const subscribeCpu = await measureSubscribeCpu(
      cas.url,
      cas.port,
      cas.process.pid,
      settings.cpuSubscribes,
      settings.cpuSockets,
    );
    progress(
      `subscriptions: ${subscribeCpu.cpuMs.toFixed(0)} ms of server CPU for ${subscribeCpu.subscribes} subscribes ` +
        `in ${subscribeCpu.wallMs.toFixed(0)} ms (idle ${subscribeCpu.idleCpuMs.toFixed(0)} ms): ` +
        `${subscribeCpu.perSubscribeMs.toFixed(3)} ms per subscribe`,
    );

    // Each count on the API, then at once on the peer, so that both see the same machine.
    const latency: SubscriptionLatencyRun[] = [];
    const peerLatency: SubscriptionLatencyRun[] = [];
    for (const count of settings.subscriberCounts) {
      progress(`subscriptions: ${count} subscriber(s), ${settings.events} events, CAS then the plain peer`);
      latency.push(await measureLatency(cas, count, settings.events, write));
      progress(describeLatency('CAS', latency.at(-1)!));
      peerLatency.push(await measureLatency(peer, count, settings.events, write));
      progress(describeLatency('plain peer', peerLatency.at(-1)!));
    }

    const connections = settings.idleConnections as [number, number];
    progress(`subscriptions: ${connections[0]} idle subscribed connections, CAS`);
    const memory = await measureIdle(cas, connections, settings.fanOutEvents, write);
    progress(describeIdle('CAS', memory));
    progress(`subscriptions: ${connections[0]} idle subscribed connections, plain peer`);
    const peerMemory = await measureIdle(peer, connections, settings.fanOutEvents, write);
    progress(describeIdle('plain peer', peerMemory));
    return {
      measured: true,
      note: 'measured',
      fields,
      query: SUBSCRIPTION,
      latency,
      subscribeCpu,
      memory,
      peer: { latency: peerLatency, memory: peerMemory },
    };
  } finally {
    for (const server of servers) await server.stop();
    await runtime.shutdown({ deadlineMs: 0 });
  }
}
