/**
 * The feed's doorbells as the database rings them (cas_feed, from cas_append_events): one per
 * append, however many events it holds, naming what listeners act on without a read.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FEED_CHANNEL, type EventNotice, type FeedNotice } from '../../src/feed/change-feed.js';
import type { Unlisten } from '../../src/db/database.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';

/** NOTIFY refuses a payload of 8,000 bytes or more. */
const NOTIFY_PAYLOAD_LIMIT = 8000;

describeEachDatabase('feed doorbells', (kind) => {
  let t: TestDatabase;
  let unlisten: Unlisten;
  const heard: string[] = [];

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    unlisten = await t.db.listen(FEED_CHANNEL, (payload) => heard.push(payload));
  });
  afterAll(async () => {
    await unlisten?.();
    await t?.close();
  });

  /** Appends the events in one call; returns the doorbells it rang, and its last seq. */
  async function append(events: { type: string; taskId: string | null }[]) {
    heard.length = 0;
    const [appended] = await t.db.query<{ last: number }>(
      `select max(seq)::float8 as last from cas_append_events($1::text[], $2::text[], $3::uuid[], $4::jsonb[])`,
      [
        events.map((e) => e.type),
        events.map(() => 'analyst'),
        events.map((e) => e.taskId),
        events.map(() => '{}'),
      ],
    );
    // Then one more append: notices arrive in commit order, so once its doorbell is here, every
    // doorbell of the first append is too.
    const [marker] = await t.db.query<{ seq: number }>(
      `select seq::float8 as seq from cas_append_event('agent_registered', 'analyst', null)`,
    );
    const deadline = Date.now() + 30_000;
    const parsed = () => heard.map((payload) => JSON.parse(payload) as FeedNotice);
    while (!parsed().some((n) => n.kind === 'events' && n.lastSeq === marker!.seq)) {
      if (Date.now() > deadline)
        throw new Error(`no doorbell for seq ${marker!.seq}; heard ${heard.join(' ')}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const rang = heard.slice(0, -1);
    return { last: appended!.last, payloads: rang, notices: rang.map((p) => JSON.parse(p) as EventNotice) };
  }

  it('rings once for an append of many events, with its last seq, its types and its cancellations', async () => {
    const cancelled = [randomUUID(), randomUUID(), randomUUID()];
    const events = [
      ...Array.from({ length: 10 }, () => ({ type: 'task_started', taskId: randomUUID() })),
      ...cancelled.map((taskId) => ({ type: 'task_cancel_requested', taskId })),
      ...Array.from({ length: 10 }, () => ({ type: 'task_completed', taskId: randomUUID() })),
      { type: 'task_queued', taskId: randomUUID() },
    ];
    const { last, notices } = await append(events);
    expect(notices).toEqual([
      {
        kind: 'events',
        lastSeq: last,
        types: ['task_cancel_requested', 'task_completed', 'task_queued', 'task_started'],
        cancelledTaskIds: cancelled,
      },
    ]);
  });

  it('names each of 250 cancellations once, in notices NOTIFY can carry', async () => {
    const cancelled = Array.from({ length: 250 }, () => randomUUID());
    const { last, payloads, notices } = await append([
      { type: 'task_failed', taskId: randomUUID() },
      ...cancelled.map((taskId) => ({ type: 'task_cancel_requested', taskId })),
    ]);
    expect(notices).toHaveLength(3);
    for (const payload of payloads) expect(Buffer.byteLength(payload)).toBeLessThan(NOTIFY_PAYLOAD_LIMIT);
    expect(notices.every((n) => n.lastSeq === last && n.types.includes('task_cancel_requested'))).toBe(true);
    expect(notices[0]!.types).toEqual(['task_cancel_requested', 'task_failed']);
    expect(notices.flatMap((n) => n.cancelledTaskIds)).toEqual(cancelled);
  });
});
