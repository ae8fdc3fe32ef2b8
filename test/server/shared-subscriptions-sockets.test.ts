/**
 * Shared subscriptions (src/server/shared-subscriptions.ts) end to end, over real sockets and with
 * real credentials: what a shared stream keeps per subscriber (its unsent-bytes bound, its viewer).
 * Real server, real database, real graphql-ws clients whose sockets the test can stop reading.
 * Outcomes are asserted (what each client received, in order; the server's own gauges), never
 * timings: every wait has only a generous ceiling for a loaded machine.
 */
import { createHash } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Role } from '../../src/auth/roles.js';
import { SUBSCRIBER_MAX_BUFFERED_BYTES } from '../../src/server/shared-subscriptions.js';
import { hs256Token, JWT_SECRET } from '../support/auth.js';
import { describeEachDatabase } from '../support/databases.js';
import { startTestServer, type AnyData, type TestServer } from './harness.js';

/** Ceiling for anything awaited here: generous, for a loaded machine. */
const CEILING_MS = 80_000;

/** Polls `check` until it holds; fails with `what` at the ceiling. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + CEILING_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A ws WebSocket the test keeps hold of: to stop reading it, and to close it whatever happens. */
const opened: WebSocket[] = [];
class HeldWebSocket extends WebSocket {
  constructor(...args: ConstructorParameters<typeof WebSocket>) {
    super(...args);
    opened.push(this);
  }
}

/** A client of `user` whose socket is open and acknowledged, with the ws socket under it. */
async function connected(server: TestServer, token: string): Promise<{ client: Client; socket: WebSocket }> {
  let ready!: (socket: WebSocket) => void;
  const acknowledged = new Promise<WebSocket>((resolve) => (ready = resolve));
  const client = createClient({
    url: server.url.replace(/^http/, 'ws'),
    webSocketImpl: HeldWebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: false,
    on: { connected: (socket) => ready(socket as WebSocket) },
  });
  return { client, socket: await acknowledged };
}

/**
 * One subscription's results as received. Each result is kept as a digest of its JSON (a result here
 * may be megabytes) and as what `summary` takes of it.
 */
class Collector<Summary = unknown> {
  readonly digests: string[] = [];
  readonly summaries: Summary[] = [];
  /** The length of each result's JSON. */
  readonly sizes: number[] = [];
  error: unknown = null;
  completed = false;
  readonly stop: () => void;

  constructor(client: Client, query: string, summary: (result: AnyData) => Summary) {
    this.stop = client.subscribe<AnyData>(
      { query },
      {
        next: (result) => {
          const json = JSON.stringify(result);
          this.sizes.push(json.length);
          this.digests.push(createHash('sha1').update(json).digest('hex'));
          this.summaries.push(summary(result));
        },
        error: (error) => (this.error = error),
        complete: () => (this.completed = true),
      },
    );
  }

  get count(): number {
    return this.digests.length;
  }
}

/** What a test reads of an agentStatusChanged result: its newest task, when that one has completed. */
interface Seen {
  done: string | null;
  versions: number;
}
const STATUS_FIELDS = 'id status recentTasks(first: 1) { id status }';
const seen = (result: AnyData): Seen => {
  const agent = result.data?.agentStatusChanged;
  const newest = agent?.recentTasks?.[0];
  return {
    done: newest?.status === 'SUCCEEDED' ? (newest.id as string) : null,
    versions: agent?.stateHistory?.length ?? 0,
  };
};

/** The code of the first GraphQL error graphql-ws delivered to a sink's `error` (an array of them). */
const errorCode = (error: unknown) =>
  Array.isArray(error) ? (error[0] as AnyData)?.extensions?.code : `not GraphQL errors: ${String(error)}`;

describeEachDatabase('shared subscriptions over real sockets', (kind) => {
  let server: TestServer;
  const clients: Client[] = [];

  beforeAll(async () => {
    server = await startTestServer(kind, {
      env: { CAS_AUTH: 'auto', SUPABASE_JWT_SECRET: JWT_SECRET },
    });
  });
  afterEach(async () => {
    // A paused socket would hold its close handshake: end them all at once, then the clients.
    for (const socket of opened.splice(0)) socket.terminate();
    await Promise.all(clients.splice(0).map((client) => client.dispose()));
    await untilMetric('cas_graphql_shared_subscription_streams', 0);
  });
  afterAll(async () => {
    await server?.close();
  });

  const connect = async (sub: string, role: Role, grants?: string[]) => {
    const connection = await connected(server, await hs256Token({ sub, role, grants }));
    clients.push(connection.client);
    return connection;
  };

  const metric = async (name: string) => {
    const found = server.runtime.processMetrics.registry.getSingleMetric(name);
    const values = (await found?.get())?.values ?? [];
    return values.reduce((sum, sample) => sum + sample.value, 0);
  };
  const untilMetric = (name: string, value: number) =>
    until(async () => (await metric(name)) === value, `${name} to read ${value}`);

  /** Runs a ping task on `agentId` to its end: two status events (task_started, task_completed). */
  const pulse = async (agentId: string, userId?: string) => {
    const task = await server.runtime.executeTask({ agentId, action: 'ping', userId, wait: true });
    expect(task.status).toBe('succeeded');
    return task.id;
  };

  /** Until the newest result of each collector shows `taskId` completed (its last status event). */
  const untilSeen = (collectors: Collector<Seen>[], taskId: string) =>
    until(() => {
      const ended = collectors.find((collector) => collector.error !== null || collector.completed);
      if (ended) throw new Error(`a subscriber ended: ${JSON.stringify(ended.error)}`);
      return collectors.every((collector) => collector.summaries.at(-1)?.done === taskId);
    }, `task ${taskId} at every subscriber`);

  /**
   * Pulses until every collector has a result (a live-only subscription is live only once the server
   * has set it up, which the protocol does not acknowledge), then once more, which all of them see.
   * Returns where that pulse's results start in each: from there on they get the same results.
   */
  const untilLive = async (agentId: string, collectors: Collector<Seen>[]) => {
    const deadline = Date.now() + CEILING_MS;
    while (!collectors.every((collector) => collector.count > 0)) {
      if (Date.now() > deadline) throw new Error('the subscriptions never went live');
      await pulse(agentId);
    }
    const level = await pulse(agentId);
    await untilSeen(collectors, level);
    return collectors.map((collector) => collector.summaries.findIndex((item) => item.done === level));
  };

  it(
    `a subscriber whose socket stops reading ends alone with SUBSCRIPTION_OVERFLOW past ${SUBSCRIBER_MAX_BUFFERED_BYTES} unsent bytes`,
    { timeout: 180_000 },
    async () => {
      // Results of about 1 MB (five state versions of 200 kB): the server writes a pulse's two results
      // to both sockets before the fast client (in this process) reads again, which must stay far
      // below the bound; a few dozen pulses fill the kernel's socket buffers and then the bound.
      const agentId = `overflow-${kind}`;
      await server.runtime.registerAgent({ id: agentId, name: 'Overflow', role: 'test' });
      for (let version = 1; version <= 5; version += 1) {
        await server.runtime.updateAgentState(agentId, { version, blob: String(version).repeat(200_000) });
      }
      const query = `subscription { agentStatusChanged(agentId: "${agentId}") { ${STATUS_FIELDS} stateHistory(first: 5) { version data } } }`;
      const fastConnection = await connect('overflow-admin', 'admin');
      const slowConnection = await connect('overflow-admin', 'admin');
      const fast = new Collector(fastConnection.client, query, seen);
      const slow = new Collector(slowConnection.client, query, seen);
      const [fastLevel, slowLevel] = await untilLive(agentId, [fast, slow]);
      expect(await metric('cas_graphql_shared_subscription_streams')).toBe(1);
      expect(fast.summaries.at(-1)?.versions).toBe(5);
      const active = await metric('cas_graphql_subscriptions_active');

      // The slow client stops reading: what the server sends it piles up in the kernel, then unsent
      // on its socket. The fast one reads each pulse's results before the next pulse.
      slowConnection.socket.pause();
      let pulses = 0;
      while ((await metric('cas_graphql_subscriptions_active')) === active) {
        // Far more than the kernel's buffers and the bound take (two results of 1 MB a pulse).
        if (pulses === 100) throw new Error('the slow subscriber was never ended');
        await untilSeen([fast], await pulse(agentId));
        pulses += 1;
      }
      // Ended alone: the fast subscriber's stream goes on and gets the next pulse too.
      expect(await metric('cas_graphql_shared_subscription_streams')).toBe(1);
      const afterOverflow = await pulse(agentId);
      await untilSeen([fast], afterOverflow);

      slowConnection.socket.resume();
      await until(() => slow.error !== null || slow.completed, 'the slow subscriber to end');
      expect(slow.completed).toBe(false);
      expect(errorCode(slow.error)).toBe('SUBSCRIPTION_OVERFLOW');
      // What it did get is what the fast one got, in order, up to where it fell behind; not the rest.
      const fastSince = fast.digests.slice(fastLevel);
      const slowSince = slow.digests.slice(slowLevel);
      expect(slowSince).toEqual(fastSince.slice(0, slowSince.length));
      expect(slow.summaries.map((item) => item.done)).not.toContain(afterOverflow);
      expect(fast.summaries.map((item) => item.done)).toContain(afterOverflow);
      expect(slowSince.length).toBeLessThan(fastSince.length);
      // More than the bound went to the fast one meanwhile: each subscriber has a bound of its own.
      const sum = (sizes: number[]) => sizes.reduce((total, size) => total + size, 0);
      expect(sum(fast.sizes.slice(fastLevel))).toBeGreaterThan(SUBSCRIBER_MAX_BUFFERED_BYTES);
      expect(fast.error).toBe(null);
      expect(fast.completed).toBe(false);
      expect(fast.summaries.slice(fastLevel).every((item) => item.versions === 5)).toBe(true);
    },
  );

  it(
    'the last subscriber of a shared stream falling behind stops the stream',
    { timeout: 180_000 },
    async () => {
      const agentId = `overflow-last-${kind}`;
      await server.runtime.registerAgent({ id: agentId, name: 'Overflow', role: 'test' });
      await server.runtime.updateAgentState(agentId, { blob: 'x'.repeat(900_000) });
      const query = `subscription { agentStatusChanged(agentId: "${agentId}") { ${STATUS_FIELDS} state { data } } }`;
      const connection = await connect('overflow-admin', 'admin');
      const only = new Collector(connection.client, query, seen);
      await untilLive(agentId, [only]);
      const active = await metric('cas_graphql_subscriptions_active');
      expect(await metric('cas_graphql_shared_subscription_streams')).toBe(1);

      connection.socket.pause();
      for (let pulses = 0; (await metric('cas_graphql_subscriptions_active')) === active; pulses += 1) {
        if (pulses === 100) throw new Error('the subscriber was never ended');
        await pulse(agentId);
      }
      // Its socket still open (and paused), nobody is left: the source stops, no execution runs on.
      await untilMetric('cas_graphql_shared_subscription_streams', 0);
      connection.socket.resume();
      await until(() => only.error !== null || only.completed, 'the subscriber to end');
      expect(errorCode(only.error)).toBe('SUBSCRIPTION_OVERFLOW');
    },
  );

  it('subscribers with different viewers never share a stream, and each sees only what its viewer may', async () => {
    const agentId = `viewers-${kind}`;
    await server.runtime.registerAgent({ id: agentId, name: 'Viewers', role: 'test' });
    // Agent.recentTasks lists only the caller's own tasks for a viewer without tasks:all.
    const query = `subscription { agentStatusChanged(agentId: "${agentId}") { id recentTasks(first: 100) { id createdBy } } }`;
    const tasksOf = (result: AnyData) =>
      (result.data?.agentStatusChanged?.recentTasks ?? []) as { id: string; createdBy: string | null }[];
    const alice = new Collector((await connect('alice', 'operator')).client, query, tasksOf);
    const aliceAgain = new Collector((await connect('alice', 'operator')).client, query, tasksOf);
    const bob = new Collector((await connect('bob', 'operator')).client, query, tasksOf);
    const all = [alice, aliceAgain, bob];
    const newest = (collector: Collector<{ id: string }[]>) => collector.summaries.at(-1)?.[0]?.id;

    const deadline = Date.now() + CEILING_MS;
    while (!all.every((collector) => collector.count > 0)) {
      if (Date.now() > deadline) throw new Error('the subscriptions never went live');
      await pulse(agentId, 'alice');
    }
    // Both of alice's sockets share one stream; bob's viewer runs its own.
    expect(await metric('cas_graphql_shared_subscription_streams')).toBe(2);
    const aliceTask = await pulse(agentId, 'alice');
    await until(() => [alice, aliceAgain].every((c) => newest(c) === aliceTask), "alice's task at alice");
    const bobTask = await pulse(agentId, 'bob');
    await until(() => newest(bob) === bobTask, "bob's task at bob");
    const aliceLevel = alice.summaries.findIndex((tasks) => tasks[0]?.id === aliceTask);
    const againLevel = aliceAgain.summaries.findIndex((tasks) => tasks[0]?.id === aliceTask);
    await until(
      () => alice.count - aliceLevel >= 4 && aliceAgain.count - againLevel >= 4,
      "bob's task at alice",
    );

    for (const collector of [alice, aliceAgain]) {
      expect(collector.error).toBe(null);
      expect(collector.summaries.flat().map((task) => task.createdBy)).not.toContain('bob');
      expect(collector.summaries.flat().map((task) => task.id)).not.toContain(bobTask);
    }
    expect(bob.error).toBe(null);
    expect(bob.summaries.flat().map((task) => task.createdBy)).not.toContain('alice');
    expect(bob.summaries.flat().map((task) => task.createdBy)).toEqual(bob.summaries.flat().map(() => 'bob'));
    // Alice's two sockets got the same results (one execution) from the level on.
    expect(alice.digests.slice(aliceLevel, aliceLevel + 4)).toEqual(
      aliceAgain.digests.slice(againLevel, againLevel + 4),
    );
    expect(await metric('cas_graphql_shared_subscription_streams')).toBe(2);
  });

  it("a viewer not allowed a shared stream is refused, though another viewer's runs", async () => {
    const agentId = `refused-${kind}`;
    await server.runtime.registerAgent({ id: agentId, name: 'Refused', role: 'test' });
    // events needs tasks:all: carol holds the grant, alice (an operator) does not.
    const query = `subscription { events(agentId: "${agentId}", types: ["task_started"]) { taskId userId } }`;
    const outcome = (result: AnyData) =>
      (result.errors?.[0]?.extensions?.code as string | undefined) ?? result.data?.events?.taskId;
    const carol = new Collector((await connect('carol', 'viewer', ['tasks:all'])).client, query, outcome);
    const deadline = Date.now() + CEILING_MS;
    while (carol.count === 0) {
      if (Date.now() > deadline) throw new Error('the subscription never went live');
      await pulse(agentId, 'alice');
    }
    expect(await metric('cas_graphql_shared_subscription_streams')).toBe(1);

    const alice = new Collector((await connect('alice', 'operator')).client, query, outcome);
    // Refused at once; were she let into carol's stream, the next event would reach her instead.
    while (alice.count === 0 && alice.error === null && !alice.completed) {
      if (Date.now() > deadline) throw new Error("alice's subscription never answered");
      await pulse(agentId, 'alice');
    }
    const refused = alice.summaries[0] ?? errorCode(alice.error);
    expect(refused).toBe('FORBIDDEN');
    const later = await pulse(agentId, 'alice');
    await until(() => carol.summaries.includes(later), "carol's next event");
    expect(alice.summaries.filter((item) => item !== 'FORBIDDEN')).toEqual([]);
    expect(carol.error).toBe(null);
  });
});
