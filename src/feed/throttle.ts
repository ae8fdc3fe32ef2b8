import { sleep } from './change-feed.js';

/**
 * Passes items through, but those `coalescable` says may be merged are delivered at most once per
 * `ms`, the latest winning; any other item is delivered at once, after the pending one.
 */
export async function* throttle<T>(
  source: AsyncIterable<T>,
  coalescable: (item: T) => boolean,
  ms: number,
): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let pending: { item: T } | null = null;
  let lastSent = 0;
  let next: Promise<IteratorResult<T>> | null = null;
  try {
    for (;;) {
      next ??= iterator.next();
      const wait: number | null = pending ? Math.max(0, lastSent + ms - Date.now()) : null;
      const result: IteratorResult<T> | null = await (wait === null
        ? next
        : Promise.race([next, sleep(wait).then(() => null)]));
      if (result === null) {
        yield pending!.item;
        pending = null;
        lastSent = Date.now();
        continue;
      }
      next = null;
      if (result.done) break;
      if (coalescable(result.value)) {
        if (Date.now() - lastSent >= ms && !pending) {
          lastSent = Date.now();
          yield result.value;
        } else {
          pending = { item: result.value };
        }
        continue;
      }
      if (pending) yield pending.item;
      pending = null;
      lastSent = Date.now();
      yield result.value;
    }
    if (pending) yield pending.item;
  } finally {
    await iterator.return?.();
  }
}
