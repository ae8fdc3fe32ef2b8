/**
 * throttle() on a clock the test controls (vitest fake timers): the spacing between coalesced
 * items is a property of the code, checked here exactly, so the live-stream tests only assert
 * outcomes and order, which hold on a machine of any speed.
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { throttle } from '../../src/feed/throttle.js';

interface Item {
  kind: 'progress' | 'final';
  n: number;
}

/** A source the test pushes into; ends after the first 'final' item. */
function pushSource() {
  const queue: Item[] = [];
  let wake: (() => void) | null = null;
  async function* items(): AsyncGenerator<Item> {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const item = queue.shift()!;
      yield item;
      if (item.kind === 'final') return;
    }
  }
  return {
    items: items(),
    push(item: Item) {
      queue.push(item);
      wake?.();
      wake = null;
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

it('delivers coalescable items at most once per window, the latest winning, and others at once after the pending one', async () => {
  const source = pushSource();
  const delivered: { at: number; item: Item }[] = [];
  const consuming = (async () => {
    for await (const item of throttle(source.items, (each) => each.kind === 'progress', 400)) {
      delivered.push({ at: Date.now(), item });
    }
  })();

  // 20 progress items, one every 50 ms, then the final one.
  for (let n = 1; n <= 20; n += 1) {
    source.push({ kind: 'progress', n });
    await vi.advanceTimersByTimeAsync(50);
  }
  source.push({ kind: 'final', n: 21 });
  await vi.advanceTimersByTimeAsync(0);
  await consuming;

  const progress = delivered.filter((each) => each.item.kind === 'progress');
  // The first at once; then one per 400 ms window (the latest of it); the pending one before the final.
  expect(progress[0]!.item.n).toBe(1);
  for (let index = 1; index < progress.length - 1; index += 1) {
    expect(progress[index]!.at - progress[index - 1]!.at).toBeGreaterThanOrEqual(400);
  }
  expect(progress.length).toBeLessThan(20);
  expect(progress.at(-1)!.item.n).toBe(20);
  expect(delivered.at(-1)!.item).toEqual({ kind: 'final', n: 21 });
  expect(delivered.map((each) => each.item.n)).toEqual(
    [...delivered.map((each) => each.item.n)].sort((a, b) => a - b),
  );
});

it('a window with no new item delivers nothing', async () => {
  const source = pushSource();
  const delivered: Item[] = [];
  const consuming = (async () => {
    for await (const item of throttle(source.items, (each) => each.kind === 'progress', 400))
      delivered.push(item);
  })();
  source.push({ kind: 'progress', n: 1 });
  await vi.advanceTimersByTimeAsync(5_000);
  expect(delivered.map((each) => each.n)).toEqual([1]);
  source.push({ kind: 'final', n: 2 });
  await vi.advanceTimersByTimeAsync(0);
  await consuming;
  expect(delivered.map((each) => each.n)).toEqual([1, 2]);
});
