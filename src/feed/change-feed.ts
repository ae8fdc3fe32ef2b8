import type { Database, Unlisten } from '../db/database.js';
import type { EventType } from '../domains/event/event.js';
import type { Logger } from '../logger.js';

/** The NOTIFY channel cas_append_events rings once for every append of event rows. */
export const FEED_CHANNEL = 'cas_feed';

/**
 * A doorbell: says events up to `lastSeq` exist; readers fetch them from the log by position. It
 * names what listeners act on without a read: the appended events' types, and the tasks whose
 * cancellation they request (an append of more than 100 of those rings again for the rest).
 */
export interface EventNotice {
  kind: 'events';
  lastSeq: number;
  types: EventType[];
  cancelledTaskIds: string[];
}

/** Says log entries up to `lastId` exist. */
export interface LogNotice {
  kind: 'log';
  lastId: number;
}

export type FeedNotice = EventNotice | LogNotice;

export const isEventNotice = (notice: FeedNotice): notice is EventNotice => notice.kind === 'events';

export type FeedListener = (notice: FeedNotice) => void;

/**
 * One listener per process on the database's change notifications, fanned out in process.
 * Notices can be missed (a dropped connection); consumers read the event log, so a missed notice
 * only delays them until their next poll.
 */
export interface ChangeFeed {
  start(): Promise<void>;
  subscribe(listener: FeedListener): () => void;
  stop(): Promise<void>;
}

export function databaseChangeFeed(db: Database, logger: Logger): ChangeFeed {
  const listeners = new Set<FeedListener>();
  let unlisten: Unlisten | null = null;

  const dispatch = (payload: string) => {
    let notice: FeedNotice;
    try {
      notice = JSON.parse(payload) as FeedNotice;
    } catch {
      logger.warn({ payload }, 'ignored a malformed feed notification');
      return;
    }
    for (const listener of listeners) {
      try {
        listener(notice);
      } catch (error) {
        logger.error({ err: error }, 'feed listener failed');
      }
    }
  };

  return {
    async start() {
      unlisten ??= await db.listen(FEED_CHANNEL, dispatch);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      listeners.clear();
      const stopListening = unlisten;
      unlisten = null;
      await stopListening?.();
    },
  };
}

/** Resolves after `ms`, or early when `signal` aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Rings when a matching notice arrives. Subscribed for its whole life, so a notice that arrives
 * while its owner is busy reading is not lost: the next `wait` returns at once. Owners re-read the
 * event log after each wake-up, so a notice the database never delivered costs latency, not data.
 */
export class Doorbell {
  private rang = false;
  private wake: (() => void) | null = null;
  private readonly unsubscribe: () => void;

  constructor(feed: ChangeFeed, matches: (notice: FeedNotice) => boolean) {
    this.unsubscribe = feed.subscribe((notice) => {
      if (matches(notice)) this.ring();
    });
  }

  ring(): void {
    this.rang = true;
    this.wake?.();
  }

  /** Resolves when rung (since the last wait), after `ms`, or when `signal` aborts. */
  async wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (!this.rang && !signal?.aborted) {
      // A timer and a callback rather than an AbortController: a busy worker waits here for every
      // batch, and aborting a controller builds a DOMException each time.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          this.wake = null;
          resolve();
        };
        const timer = setTimeout(done, ms);
        this.wake = done;
        signal?.addEventListener('abort', done, { once: true });
      });
    }
    this.rang = false;
  }

  close(): void {
    this.unsubscribe();
    this.wake?.();
  }
}
