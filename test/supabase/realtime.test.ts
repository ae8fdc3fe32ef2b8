/**
 * The change feed over Supabase Realtime against the Realtime double, on each backing database:
 * the notices are those NOTIFY cas_feed carries, what the driver sends to join, recovery after
 * Realtime drops, the polling fallback during an outage, and which feed each configuration gets.
 */
import { createClient, type WebSocketLikeConstructor } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createSupabaseClient } from '../../src/db/supabase.js';
import type { ChangeFeed, FeedNotice } from '../../src/feed/change-feed.js';
import type { Queryable } from '../../src/db/database.js';
import { FEED_CHANNEL } from '../../src/feed/change-feed.js';
import { supabaseRealtimeFeed } from '../../src/feed/supabase-realtime.js';
import { silentLogger } from '../../src/logger.js';
import { createRuntime, openBackend } from '../../src/runtime/create-runtime.js';
import type { CustomRuntime } from '../../src/runtime/custom-runtime.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';
import { FAST_RUNTIME_ENV } from '../support/runtime.js';

/** Ceiling for a condition to come true: generous, for a loaded machine; quiet runs take far less. */
const CONDITION_CEILING_MS = 25_000;

async function until(check: () => boolean | Promise<boolean>, what = 'condition', timeoutMs = CONDITION_CEILING_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether `notices` hold the doorbell of the event that registered `agentId` (one event, its own append). */
async function rangForRegistration(db: Queryable, notices: readonly FeedNotice[], agentId: string) {
  const [event] = await db.query<{ seq: number | null }>(
    `select max(seq)::float8 as seq from cas_agent_events where agent_id = $1 and event_type = 'agent_registered'`,
    [agentId],
  );
  return notices.some(
    (n) => n.kind === 'events' && n.lastSeq === event?.seq && n.types.includes('agent_registered'),
  );
}

const key = (notice: FeedNotice) => JSON.stringify(Object.entries(notice).sort(([a], [b]) => a.localeCompare(b)));

describeEachDatabase('Supabase Realtime feed over the Realtime double', (kind) => {
  const backing = kind as 'pglite' | 'postgres';
  let t: TestDatabase;
  let runtime: CustomRuntime;
  let feed: ChangeFeed;
  const overRealtime: FeedNotice[] = [];
  const overListen: FeedNotice[] = [];
  let unlisten: () => Promise<void>;

  beforeAll(async () => {
    t = await openTestDatabase('supabase', { backing });
    runtime = await createRuntime({ config: loadConfig({ ...FAST_RUNTIME_ENV, ...t.env! }), logger: silentLogger() });
    feed = supabaseRealtimeFeed(
      createSupabaseClient({ url: t.supabase!.url, serviceRoleKey: t.supabase!.keys.serviceRole }),
      silentLogger(),
    );
    feed.subscribe((notice) => overRealtime.push(notice));
    await feed.start();
    unlisten = await t.db.listen(FEED_CHANNEL, (payload) => overListen.push(JSON.parse(payload) as FeedNotice));
  });
  afterAll(async () => {
    await unlisten?.();
    await feed?.stop();
    await runtime?.shutdown();
    await t?.close();
  });

  const joins = () => t.supabase!.realtime.received.filter((frame) => frame.event === 'phx_join');

  it('joins the private topic cas:feed with the service role key, listening to Broadcast only', () => {
    expect(joins().length).toBeGreaterThanOrEqual(2); // the runtime's feed and this test's
    for (const join of joins()) {
      expect(join.topic).toBe('realtime:cas:feed');
      expect(join.payload).toMatchObject({
        access_token: t.supabase!.keys.serviceRole,
        config: { private: true, postgres_changes: [], broadcast: { self: false, ack: false } },
      });
    }
  });

  it('answers realtime-js heartbeats, so a connection stays up', async () => {
    const beats: string[] = [];
    const client = createClient(t.supabase!.url, t.supabase!.keys.serviceRole, {
      auth: { persistSession: false, autoRefreshToken: false },
      realtime: {
        transport: WebSocket as unknown as WebSocketLikeConstructor,
        // Often enough to see a few, slow enough that a loaded machine answers each in time.
        heartbeatIntervalMs: 500,
        heartbeatCallback: (status) => beats.push(status),
      },
    });
    const channel = client.channel('heartbeat-check', { config: { private: true } });
    try {
      await new Promise<void>((resolve, reject) =>
        channel.subscribe((status, error) =>
          status === 'SUBSCRIBED' ? resolve() : status !== 'CLOSED' && reject(error ?? new Error(status)),
        ),
      );
      await until(() => beats.filter((beat) => beat === 'ok').length >= 3, 'three answered heartbeats');
      const heartbeats = t.supabase!.realtime.received.filter((frame) => frame.topic === 'phoenix');
      expect(heartbeats.every((frame) => frame.event === 'heartbeat')).toBe(true);
    } finally {
      await client.removeAllChannels();
    }
  });

  it('carries exactly the notices NOTIFY cas_feed carries: events and log batches', async () => {
    overRealtime.length = 0;
    overListen.length = 0;
    await runtime.registerAgent(
      { id: 'chatty', name: 'Chatty', role: 'qa' },
      {
        actions: {
          talk: (_input, ctx) => {
            ctx.log('info', 'one');
            ctx.log('warn', 'two', { n: 2 });
            ctx.progress(0.5);
            return { said: 2 };
          },
        },
      },
    );
    const task = await runtime.executeTask({ agentId: 'chatty', action: 'talk', wait: true });
    expect(task.status).toBe('succeeded');
    await runtime.updateAgentState('chatty', { mood: 'done' });
    await until(
      async () =>
        overListen.some((n) => n.kind === 'log') &&
        (await runtime.getLogs({ agentId: 'chatty' })).items.length === 2 &&
        overRealtime.length >= overListen.length,
      'the notices of the workload',
    );
    await new Promise((resolve) => setTimeout(resolve, 100)); // nothing more arrives on either side
    expect(overListen.filter((n) => n.kind === 'events').length).toBeGreaterThanOrEqual(5);
    expect(overRealtime.map(key).sort()).toEqual(overListen.map(key).sort());
  });

  it('rejoins after Realtime drops its connections, and notices flow again', async () => {
    const before = joins().length;
    t.supabase!.realtime.dropConnections();
    await until(() => joins().length >= before + 2, 'both feeds to rejoin');
    const heard: FeedNotice[] = [];
    const stop = feed.subscribe((notice) => heard.push(notice));
    try {
      await runtime.registerAgent({ id: 'after-drop', name: 'After drop', role: 'qa' });
      await until(() => rangForRegistration(t.db, heard, 'after-drop'), 'the notice');
    } finally {
      stop();
    }
  });

  it('keeps running tasks while Realtime is down: workers fall back to polling', async () => {
    const realtime = t.supabase!.realtime;
    realtime.refuseConnections = true;
    realtime.dropConnections();
    try {
      const delivered = realtime.delivered.length;
      const task = await runtime.executeTask({ agentId: 'analyst', action: 'ping', wait: true });
      expect(task.status).toBe('succeeded');
      expect(realtime.delivered.length).toBe(delivered);
      expect(realtime.connections()).toBe(0);
    } finally {
      realtime.refuseConnections = false;
      // Both feeds come back (realtime-js retries after 1 s, then 2 s, 5 s, ...).
      const before = joins().length;
      await until(() => joins().length >= before + 2, 'both feeds to rejoin after the outage');
    }
  });

  describe('DATABASE_URL and Supabase both set', () => {
    const configWith = (env: Record<string, string>) =>
      loadConfig({ DATABASE_URL: 'postgres://localhost/unused', ...t.env!, ...env });

    it('sends data over the database connection and notices over Realtime when the database broadcasts', async () => {
      const config = configWith({});
      expect(config.mode).toBe('postgres');
      const registrations = () => t.supabase!.postgrest.calls.filter((c) => c.fn === 'cas_register_agent').length;
      const rpcCalls = registrations();
      const joined = joins().length;
      const backend = await openBackend(config, silentLogger(), t.db);
      expect(backend.kind).toBe(backing);
      const heard: FeedNotice[] = [];
      backend.feed.subscribe((notice) => heard.push(notice));
      await backend.feed.start();
      try {
        expect(joins().length).toBe(joined + 1);
        await backend.sql.rows('cas_register_agent', { p_id: 'both-set', p_name: 'Both', p_role: 'qa' });
        await until(() => rangForRegistration(t.db, heard, 'both-set'), 'the notice');
        expect(registrations()).toBe(rpcCalls);
      } finally {
        await backend.feed.stop();
      }
    });

    // A database without Supabase's realtime schema: opened once, outside the tests' time limit.
    let plain: TestDatabase;
    beforeAll(async () => {
      plain = await openTestDatabase(backing);
    });
    afterAll(() => plain?.close());

    it('listens with LISTEN when the database does not broadcast, or when CAS_FEED=listen', async () => {
      for (const [db, env] of [
        [plain.db, {}],
        [t.db, { CAS_FEED: 'listen' }],
      ] as const) {
        const joined = joins().length;
        const backend = await openBackend(configWith(env), silentLogger(), db);
        const heard: FeedNotice[] = [];
        backend.feed.subscribe((notice) => heard.push(notice));
        await backend.feed.start();
        try {
          const id = `listen-${heard.length}-${Date.now()}`;
          await backend.sql.rows('cas_register_agent', { p_id: id, p_name: 'L', p_role: 'qa' });
          await until(() => rangForRegistration(db, heard, id), 'the notice');
          expect(joins().length).toBe(joined);
        } finally {
          await backend.feed.stop();
        }
      }
    });

    it('refuses CAS_FEED=realtime on a database that does not broadcast', async () => {
      const backend = await openBackend(configWith({ CAS_FEED: 'realtime' }), silentLogger(), plain.db);
      await expect(backend.feed.start()).rejects.toThrow(/does not broadcast to Supabase Realtime/);
      await backend.feed.stop();
    });
  });
});

describe('configuration precedence', () => {
  const supabase = { SUPABASE_URL: 'https://project.supabase.co', SUPABASE_SERVICE_ROLE_KEY: 'k'.repeat(40) };

  it('DATABASE_URL wins for data; Supabase alone is Supabase mode; NEXT_PUBLIC_SUPABASE_URL is accepted', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://db/x', ...supabase })).toMatchObject({
      mode: 'postgres',
      feed: 'auto',
    });
    expect(loadConfig(supabase)).toMatchObject({ mode: 'supabase', supabase: { url: supabase.SUPABASE_URL } });
    expect(
      loadConfig({ NEXT_PUBLIC_SUPABASE_URL: supabase.SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY: 'k'.repeat(40) }),
    ).toMatchObject({ mode: 'supabase' });
  });

  it('refuses CAS_FEED values the configuration cannot serve', () => {
    expect(() => loadConfig({ CAS_FEED: 'realtime' })).toThrow(ConfigError);
    expect(() => loadConfig({ CAS_FEED: 'listen', ...supabase })).toThrow(/CAS_FEED=listen needs DATABASE_URL/);
    expect(() => loadConfig({ CAS_FEED: 'sometimes' })).toThrow(/CAS_FEED: must be one of: auto, listen, realtime/);
  });
});
