/**
 * The log tail's own logic over an in-memory ordered log (the database-backed behaviour is covered
 * by test/runtime/live.test.ts and test/server/subscriptions.test.ts): many subscribers joining at
 * once with a cursor do not send one read each to the database at the same moment, and each still
 * gets every item, in order.
 */
import { expect, it } from 'vitest';
import { LogTail, SUBSCRIBER_READ_CONCURRENCY, type OrderedLog } from '../../src/feed/log-tail.js';
import { silentLogger } from '../../src/logger.js';

interface Entry {
  position: number;
}

/** An append-only log in memory that records how many reads are in flight at once. */
function memoryLog(size: number) {
  const entries: Entry[] = Array.from({ length: size }, (_, index) => ({ position: index + 1 }));
  const reads = { inFlight: 0, most: 0 };
  const log: OrderedLog<Entry, null> = {
    position: (entry) => entry.position,
    head: async () => entries.length,
    readAfter: async (position, limit) => {
      reads.inFlight += 1;
      reads.most = Math.max(reads.most, reads.inFlight);
      // A read takes a turn of the event loop, as a database round trip does.
      await new Promise((resolve) => setImmediate(resolve));
      reads.inFlight -= 1;
      return entries.filter((entry) => entry.position > position).slice(0, limit);
    },
    matches: () => true,
  };
  return { log, reads };
}

async function takeFirst(stream: AsyncIterableIterator<Entry>, count: number): Promise<number[]> {
  const seen: number[] = [];
  for await (const entry of stream) {
    seen.push(entry.position);
    if (seen.length === count) break;
  }
  return seen;
}

it('subscribers replaying from a cursor share a few reads at a time, and each gets everything in order', async () => {
  const SIZE = 25;
  const { log, reads } = memoryLog(SIZE);
  const tail = new LogTail(log, { batchSize: 10, subscriberCapacity: 100 }, silentLogger());
  const everything = Array.from({ length: SIZE }, (_, index) => index + 1);

  const seen = await Promise.all(Array.from({ length: 200 }, () => takeFirst(tail.subscribe(null, 0), SIZE)));

  expect(seen.every((positions) => positions.join() === everything.join())).toBe(true);
  expect(reads.most).toBeLessThanOrEqual(SUBSCRIBER_READ_CONCURRENCY);
  tail.closeAll();
});
