import type { Logger } from '../logger.js';
import { BoundedQueue } from './queue.js';

/**
 * An append-only log whose positions commit in order (cas_agent_events by seq, cas_agent_logs by
 * id): a reader that has seen position N has seen everything before it.
 */
export interface OrderedLog<Item, Filter> {
  position(item: Item): number;
  /** The newest position now. */
  head(): Promise<number>;
  /** Items after `position` in order, matching `filter` when given. */
  readAfter(position: number, limit: number, filter?: Filter): Promise<Item[]>;
  matches(item: Item, filter: Filter): boolean;
}

export interface LogTailOptions {
  /** Rows read per query. */
  batchSize: number;
  /** Batches a subscriber may fall behind before its stream ends with SUBSCRIPTION_OVERFLOW. */
  subscriberCapacity: number;
}

/** What the tail read from `from` (exclusive) to `to` (inclusive), and what of it matched. */
interface Batch<Item> {
  from: number;
  to: number;
  items: Item[];
}

/**
 * Most reads subscribers make on their own (replay after a cursor, a missed range) at once, per
 * tail. Many subscribers joining together (1,000 with a cursor) would otherwise send one read each
 * to the database at the same moment; every write then queued behind them for their whole duration
 * (with Supabase, past the 30 s request limit). The tail's own read, shared by all, is not limited.
 */
export const SUBSCRIBER_READ_CONCURRENCY = 4;

/** Lets `limit` calls run at once; the others wait, first come first served. */
class ConcurrencyLimit {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running += 1;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `running` stays counted.
      if (next) next();
      else this.running -= 1;
    }
  }
}

interface Subscriber<Item, Filter> {
  filter: Filter;
  queue: BoundedQueue<Batch<Item>>;
  live: boolean;
  /** Every matching item at or before this position has been handed to the consumer. */
  covered: number;
}

/**
 * Follows an ordered log for all subscribers of this process: one read per wake-up, whatever the
 * number of subscribers, fanned out in process. A subscriber with a cursor replays the log after
 * it, then continues live. Each live batch says which range it covers; a subscriber that finds a
 * range it has not seen (it joined while the tail was between reads) reads that range itself, so
 * nothing falls between replay and live, and positions drop the duplicates.
 */
export class LogTail<Item, Filter> {
  private readonly subscribers = new Set<Subscriber<Item, Filter>>();
  /** Where the next read starts; null while nobody subscribes. */
  private head: Promise<number> | null = null;
  /**
   * `head`'s value once known, set in the same tick as `head`: a live-only subscriber joining then
   * starts right there, with no read of its own (everything after it reaches it in batches).
   */
  private knownHead: number | null = null;
  private pumping: Promise<void> | null = null;
  private pumpAgain = false;
  private readonly subscriberReads = new ConcurrencyLimit(SUBSCRIBER_READ_CONCURRENCY);

  constructor(
    private readonly log: OrderedLog<Item, Filter>,
    private readonly options: LogTailOptions,
    private readonly logger: Logger,
  ) {}

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Reads what is new and delivers it; called on each doorbell and by the fallback poll. */
  wake(): Promise<void> {
    if (this.pumping) {
      this.pumpAgain = true;
      return this.pumping;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
    });
    return this.pumping;
  }

  /**
   * Items matching `filter` after position `after`, then live ones, until the consumer stops.
   * With `after` null, only items that arrive from now on. The subscriber is registered at once;
   * `return()` ends the stream even while it waits for the next item.
   */
  subscribe(filter: Filter, after: number | null): AsyncIterableIterator<Item> {
    const subscriber: Subscriber<Item, Filter> = {
      filter,
      queue: new BoundedQueue<Batch<Item>>(this.options.subscriberCapacity),
      live: false,
      covered: 0,
    };
    this.subscribers.add(subscriber);
    // The tail starts reading where the first subscriber starts, so no live item falls before it.
    this.head ??= this.fetchHead();
    if (after === null && this.knownHead !== null) {
      subscriber.covered = this.knownHead;
      subscriber.live = true;
    }
    const stream = this.stream(subscriber, after === null ? this.head : Promise.resolve(after));
    const stop = () => this.unsubscribe(subscriber);
    return {
      next: () => stream.next(),
      return: async () => {
        stop();
        return stream.return(undefined);
      },
      throw: async (error: unknown) => {
        stop();
        return stream.throw(error);
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  private fetchHead(): Promise<number> {
    const head = this.log.head();
    head.then(
      (value) => {
        if (this.head === head) this.knownHead = value;
      },
      // A failed read must not stick: the next subscriber or wake-up asks again.
      () => {
        if (this.head === head) this.head = null;
      },
    );
    return head;
  }

  private unsubscribe(subscriber: Subscriber<Item, Filter>): void {
    this.subscribers.delete(subscriber);
    subscriber.queue.close();
    // Idle: forget the position, so the next subscriber starts from the head as it is then.
    if (this.subscribers.size === 0) this.forgetHead();
  }

  private async *stream(subscriber: Subscriber<Item, Filter>, start: Promise<number>): AsyncGenerator<Item> {
    const { filter } = subscriber;
    try {
      let last = await start;
      if (subscriber.live) {
        // Joined live at the known head (subscribe): batches after it come through the queue.
        last = subscriber.covered;
      } else {
        for await (const item of this.read(filter, last, Number.POSITIVE_INFINITY)) {
          yield item;
          last = this.log.position(item);
        }
        subscriber.covered = last;
        subscriber.live = true;
      }
      for await (const batch of subscriber.queue) {
        if (batch.from > subscriber.covered) {
          for await (const item of this.read(filter, subscriber.covered, batch.from)) {
            if (this.log.position(item) <= last) continue;
            yield item;
            last = this.log.position(item);
          }
        }
        subscriber.covered = Math.max(subscriber.covered, batch.to);
        for (const item of batch.items) {
          if (this.log.position(item) <= last) continue;
          yield item;
          last = this.log.position(item);
        }
      }
    } finally {
      this.unsubscribe(subscriber);
    }
  }

  /** The newest position this tail has delivered, or the log's head when it is idle. */
  currentHead(): Promise<number> {
    return this.head ?? this.log.head();
  }

  /** Ends every subscription (shutdown). */
  closeAll(): void {
    for (const subscriber of this.subscribers) subscriber.queue.close();
    this.subscribers.clear();
    this.forgetHead();
  }

  private forgetHead(): void {
    this.head = null;
    this.knownHead = null;
  }

  /** Matching items in (from, to], read in batches. */
  private async *read(filter: Filter, from: number, to: number): AsyncGenerator<Item> {
    let position = from;
    for (;;) {
      const items = await this.subscriberReads.run(() =>
        this.log.readAfter(position, this.options.batchSize, filter),
      );
      for (const item of items) {
        if (this.log.position(item) > to) return;
        yield item;
        position = this.log.position(item);
      }
      if (items.length < this.options.batchSize) return;
    }
  }

  private async pump(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        for (;;) {
          const head = this.head;
          if (!head) return;
          const from = await head;
          const items = await this.log.readAfter(from, this.options.batchSize);
          if (items.length === 0 || this.head !== head) break;
          const to = this.log.position(items.at(-1)!);
          this.head = Promise.resolve(to);
          this.knownHead = to;
          this.deliver({ from, to, items });
          if (items.length < this.options.batchSize) break;
        }
      } while (this.pumpAgain);
    } catch (error) {
      this.logger.warn({ err: error }, 'reading the log failed; the next wake-up retries');
    }
  }

  private deliver(batch: Batch<Item>): void {
    for (const subscriber of this.subscribers) {
      const items = batch.items.filter((item) => this.log.matches(item, subscriber.filter));
      if (subscriber.live && items.length === 0 && subscriber.queue.size === 0) {
        // Nothing for it and nothing pending: it has seen this range.
        subscriber.covered = Math.max(subscriber.covered, batch.to);
      } else {
        subscriber.queue.push({ from: batch.from, to: batch.to, items });
      }
    }
  }
}
