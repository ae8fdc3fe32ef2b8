import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import type { AgentEvent } from '../../src/domains/event/event.js';
import { eventCursor } from '../../src/domains/event/event.js';
import type { Task } from '../../src/domains/task/task.js';
import { sqlFunctionsOver } from '../../src/db/sql-functions.js';
import type { Database } from '../../src/db/database.js';
import { agentStore } from '../../src/domains/agent/agent.js';
import { eventStore } from '../../src/domains/event/event.js';
import { logStore } from '../../src/domains/log/log.js';
import { taskStore } from '../../src/domains/task/task.js';
import { databaseChangeFeed } from '../../src/feed/change-feed.js';
import { silentLogger } from '../../src/logger.js';
import { LiveStreams } from '../../src/runtime/live.js';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { steppedAction } from '../support/stepped-action.js';

/** Takes items from an async iterable until `done` says stop (or `ms` pass), then closes it. */
async function take<T>(source: AsyncIterable<T>, done: (items: T[]) => boolean, ms = 15_000): Promise<T[]> {
  const items: T[] = [];
  const iterator = source[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  try {
    while (!done(items)) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out with ${items.length} items`);
      const result = await Promise.race([
        iterator.next(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`timed out with ${items.length} items`)), remaining),
        ),
      ]);
      if (result.done) break;
      items.push(result.value);
    }
  } finally {
    await iterator.return?.();
  }
  return items;
}

const storesOver = (db: Database) => {
  const sql = sqlFunctionsOver(db);
  return { events: eventStore(sql), logs: logStore(sql), tasks: taskStore(sql), agents: agentStore(sql) };
};

const contiguous = (events: AgentEvent[]) =>
  events.every((event, index) => index === 0 || event.seq === events[index - 1]!.seq + 1);

describeEachDatabase('live streams', (kind) => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await openTestRuntime(kind);
  });
  afterAll(() => t.close());

  it('watchTask yields the snapshot first, increasing progress, and completes at the final status', async () => {
    const stepped = steppedAction(3);
    t.runtime.defineActions('analyst', { steppedWatch: stepped.run });
    const task = await t.runtime.executeTask({ agentId: 'analyst', action: 'steppedWatch' });
    // Each step is released once the stream has shown the previous one, so every step is seen.
    const snapshots = await take(t.runtime.watchTask(task.id), (items) => {
      if (items.length > 0) stepped.advance(items.at(-1)!.progress);
      return false;
    });
    expect(snapshots[0]?.id).toBe(task.id);
    expect(snapshots.at(-1)).toMatchObject({ status: 'succeeded', progress: 1 });
    const progress = snapshots.map((snapshot) => snapshot.progress ?? 0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect([...new Set(progress)].filter((value) => value > 0)).toEqual([1 / 3, 2 / 3, 1]);
  });

  it('watchTask with throttleMs coalesces progress but always delivers the final status', async () => {
    const STEPS = 10;
    const stepped = steppedAction(STEPS);
    t.runtime.defineActions('analyst', { steppedThrottle: stepped.run });
    const task = await t.runtime.executeTask({ agentId: 'analyst', action: 'steppedThrottle' });
    // A throttle window longer than the test: after the first change, progress waits until the
    // final status flushes the latest one. (Spacing within shorter windows: test/feed/throttle.test.ts.)
    const throttled = take(t.runtime.watchTask(task.id, { throttleMs: 60_000 }), () => false);
    // An unthrottled watcher drives the steps, so the task really reports every one of them.
    const unthrottled = await take(t.runtime.watchTask(task.id), (items) => {
      if (items.length > 0) stepped.advance(items.at(-1)!.progress);
      return false;
    });
    const snapshots = await throttled;
    const changes = (list: Task[]) => new Set(list.map((snapshot) => snapshot.progress ?? 0)).size;
    expect(changes(unthrottled)).toBe(STEPS + 1);
    expect(snapshots.at(-1)).toMatchObject({ status: 'succeeded', progress: 1 });
    // The first snapshot, the first change, the latest progress flushed before the final status, and it.
    expect(snapshots.length).toBeLessThanOrEqual(4);
    const progress = snapshots.map((snapshot) => snapshot.progress ?? 0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('a finished task yields its final snapshot and ends', async () => {
    const task = await t.runtime.executeTask({ agentId: 'qa', action: 'ping', wait: true });
    const snapshots = await take(t.runtime.watchTask(task.id), () => false);
    expect(snapshots.map((snapshot: Task) => snapshot.status)).toEqual(['succeeded']);
  });

  it('resumes after the third event with exactly the rest', async () => {
    const task = await t.runtime.executeTask({
      agentId: 'planner',
      action: 'wait',
      input: { ms: 300, steps: 3 },
      wait: true,
    });
    const all = await take(t.runtime.streamTask(task.id), () => false);
    expect(all.length).toBeGreaterThan(4);
    const rest = await take(t.runtime.streamTask(task.id, { after: eventCursor(all[2]!) }), () => false);
    expect(rest.map((event) => event.id)).toEqual(all.slice(3).map((event) => event.id));
  });

  it('events without a cursor are live only; with one, replayed then live', async () => {
    const liveOnly = t.runtime.subscribeEvents({ agentId: 'engineer' });
    const collecting = take(liveOnly, (items) => items.some((event) => event.type === 'task_completed'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await t.runtime.updateAgentState('engineer', { live: true });
    await t.runtime.executeTask({ agentId: 'engineer', action: 'ping', wait: true });
    const live = await collecting;
    expect(live.map((event) => event.type)).toEqual([
      'state_updated',
      'task_queued',
      'task_started',
      'task_completed',
    ]);
    const replayed = await take(
      t.runtime.subscribeEvents({
        agentId: 'engineer',
        after: eventCursor({ seq: live[0]!.seq - 1 }),
        types: ['task_completed'],
      }),
      (items) => items.length === 1,
    );
    expect(replayed[0]?.id).toBe(live.at(-1)?.id);
  });

  it(
    '20 subscribers joining at random moments while 50 writers write each see a contiguous, duplicate-free sequence',
    { timeout: 60_000 },
    async () => {
      const [{ last_seq: startSeq } = { last_seq: 0 }] = await t.db.query<{ last_seq: number }>(
        'select last_seq::int as last_seq from cas_event_sequence',
      );
      let expectedLast = Number.POSITIVE_INFINITY;
      // Writers: 50 concurrent agents, each registering and then updating its state 4 times.
      const writers = Array.from({ length: 50 }, async (_, writer) => {
        const agentId = `writer-${writer}`;
        await t.runtime.registerAgent({ id: agentId, name: agentId, role: 'qa' });
        for (let round = 0; round < 4; round += 1) await t.runtime.updateAgentState(agentId, { round });
      });
      // Subscribers: each reads a page of history at a random moment, then subscribes after it.
      const subscribers = Array.from({ length: 20 }, async (_, index) => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 300));
        const page = await t.runtime.getEventHistory({
          first: 1 + index,
          after: eventCursor({ seq: startSeq }),
        });
        const afterSeq = page.items.at(-1)?.seq ?? startSeq;
        const seen = await take(
          t.runtime.subscribeEvents({ after: eventCursor({ seq: afterSeq }) }),
          (items) => (items.at(-1)?.seq ?? 0) >= expectedLast,
          30_000,
        );
        return { afterSeq, seen };
      });
      await Promise.all(writers);
      const [head] = await t.db.query<{ last_seq: number }>(
        'select last_seq::int as last_seq from cas_event_sequence',
      );
      expectedLast = head!.last_seq;
      // One more event, so a subscriber that already had the last one checks again.
      await t.runtime.updateAgentState('writer-0', { done: true });
      const results = await Promise.all(subscribers);
      for (const { afterSeq, seen } of results) {
        expect(seen[0]?.seq).toBe(afterSeq + 1);
        expect(contiguous(seen)).toBe(true);
        expect(seen.at(-1)!.seq).toBeGreaterThanOrEqual(expectedLast);
        expect(new Set(seen.map((event) => event.id)).size).toBe(seen.length);
      }
    },
  );

  it('agent status changes stream as the agent works', async () => {
    await t.runtime.registerAgent({ id: 'watched', name: 'Watched', role: 'qa' });
    const busyThenIdle = (items: { status: string }[]) => {
      const busy = items.findIndex((agent) => agent.status === 'busy');
      return busy >= 0 && items.slice(busy + 1).some((agent) => agent.status === 'idle');
    };
    const collecting = take(t.runtime.watchAgents('watched'), busyThenIdle);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await t.runtime.executeTask({ agentId: 'watched', action: 'wait', input: { ms: 200 }, wait: true });
    const seen = await collecting;
    expect(seen.map((agent) => agent.status)).toContain('busy');
    expect(seen.at(-1)?.status).toBe('idle');
    await expect(take(t.runtime.watchAgents('nobody'), () => false)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('log entries stream with agent and level filters applied', async () => {
    await t.runtime.registerAgent(
      { id: 'talker', name: 'Talker', role: 'qa' },
      {
        actions: {
          talk: (_input, ctx) => {
            ctx.log('debug', 'quiet');
            ctx.log('warn', 'loud');
            ctx.log('error', 'louder');
          },
        },
      },
    );
    const collecting = take(
      t.runtime.subscribeLogs({ agentId: 'talker', levels: ['warn', 'error'] }),
      (items) => items.length === 2,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await t.runtime.executeTask({ agentId: 'talker', action: 'talk', wait: true });
    const entries = await collecting;
    expect(entries.map((entry) => [entry.level, entry.message])).toEqual([
      ['warn', 'loud'],
      ['error', 'louder'],
    ]);
  });

  // The tail's overflow does not depend on the backend; a small buffer makes it quick to reach.
  if (kind !== 'supabase') {
    it('a subscriber too slow to keep up gets SUBSCRIPTION_OVERFLOW instead of a silent gap', async () => {
      const live = new LiveStreams(
        databaseChangeFeed(t.db, silentLogger()),
        storesOver(t.db),
        { pollMs: 50, subscriberCapacity: 5 },
        silentLogger(),
      );
      live.start();
      try {
        const stream = live.events$({ agentId: 'marketer' }, null);
        const first = stream.next();
        // Live only from the head the stream reads as it starts, which on a busy machine can come
        // after a write made now (that event is then never delivered): write until one arrives.
        let received = false;
        void first.then(
          () => (received = true),
          () => (received = true),
        );
        for (let n = -1; !received; n -= 1) {
          await t.runtime.updateAgentState('marketer', { n });
          await live.wakeForTests();
          await Promise.race([first, new Promise((resolve) => setTimeout(resolve, 200))]);
        }
        // Never read again while far more than five batches arrive. A busy machine may deliver
        // two or three writes in one batch (a wake-up during a pump joins the next pump), so many
        // more writes than the capacity, or the stream would wait for an overflow that never comes.
        for (let n = 0; n < 60; n += 1) {
          await t.runtime.updateAgentState('marketer', { n });
          await live.wakeForTests();
        }
        // Closing the streams ends this one once it has handed out what it holds: with the overflow,
        // its error; without, its last event and done, rather than a wait for more that never ends.
        live.stop();
        let error: unknown = null;
        try {
          for (;;) if ((await stream.next()).done) break;
        } catch (caught) {
          error = caught;
        }
        expect(error).toMatchObject({ code: 'SUBSCRIPTION_OVERFLOW' });
      } finally {
        live.stop();
      }
    });
  }

  if (kind === 'postgres') {
    it(
      'the LISTEN connection is terminated: the feed reconnects and no event is lost',
      { timeout: 30_000 },
      async () => {
        const start = await t.runtime.getEventHistory({ first: 500, after: null, agentId: 'security' });
        const collecting = take(
          t.runtime.subscribeEvents({ agentId: 'security', after: start.endCursor ?? null }),
          (items) => items.length === 6,
        );
        const admin = new pg.Client({ connectionString: t.testDb.url });
        await admin.connect();
        const { rows } = await admin.query(
          `select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and application_name like '%:listen'`,
        );
        expect(rows).toHaveLength(1);
        await admin.end();
        for (let n = 0; n < 6; n += 1) await t.runtime.updateAgentState('security', { n });
        const seen = await collecting;
        expect(seen.map((event) => event.payload.version)).toEqual(
          seen.map((_, index) => (seen[0]!.payload.version as number) + index),
        );
        const afterReconnect = Date.now();
        await t.runtime.executeTask({ agentId: 'security', action: 'ping', wait: true });
        expect(Date.now() - afterReconnect).toBeLessThan(3000);
      },
    );
  }
});
