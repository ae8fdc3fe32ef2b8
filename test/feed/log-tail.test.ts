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
  const reads = { inFlight: 0, most: 0, total: 0 };
  const log: OrderedLog<Entry, null> = {
    position: (entry) => entry.position,
    head: async () => entries.length,
    readAfter: async (position, limit) => {
      reads.inFlight += 1;
      reads.total += 1;
      reads.most = Math.max(reads.most, reads.inFlight);
      // A read takes a turn of the event loop, as a database round trip does.
      await new Promise((resolve) => setImmediate(resolve));
      reads.inFlight -= 1;
      return entries.filter((entry) => entry.position > position).slice(0, limit);
    },
    matches: () => true,
  };
  const append = (count: number) => {
    for (let n = 0; n < count; n += 1) entries.push({ position: entries.length + 1 });
  };
  return { log, reads, append };
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

it('live-only subscribers joining while the tail runs read nothing themselves, and miss nothing after they joined', async () => {
  const { log, reads, append } = memoryLog(5);
  const tail = new LogTail(log, { batchSize: 10, subscriberCapacity: 100 }, silentLogger());
  const first = tail.subscribe(null, null);
  const firstSeen = takeFirst(first, 3);
  // Let the first subscriber learn the head (5), and the tail read past a write.
  await new Promise((resolve) => setImmediate(resolve));
  append(1);
  await tail.wake();
  const readsBefore = reads.total;

  const joined = Array.from({ length: 100 }, () => takeFirst(tail.subscribe(null, null), 2));
  append(2);
  await tail.wake();

  expect(await Promise.all(joined)).toEqual(Array.from({ length: 100 }, () => [7, 8]));
  expect(await firstSeen).toEqual([6, 7, 8]);
  // The tail's own read of 7 and 8 (and the empty read that ends it), none per subscriber.
  expect(reads.total - readsBefore).toBeLessThanOrEqual(2);
  tail.closeAll();
});
