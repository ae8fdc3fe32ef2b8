import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import type { Logger } from '../logger.js';
import type { ChangeFeed, FeedListener, FeedNotice } from './change-feed.js';

/**
 * The change feed over Supabase Realtime: supabase/migrations sends every doorbell cas_feed rings
 * with Broadcast from Database (realtime.send) on this private topic, as this event.
 */
export const REALTIME_FEED_TOPIC = 'cas:feed';
export const REALTIME_NOTICE_EVENT = 'notice';

export interface RealtimeFeedOptions {
  /** How long start() waits for the channel to join before going on without it. */
  joinTimeoutMs?: number;
}

const delay = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

const isNotice = (value: unknown): value is FeedNotice & { id?: unknown } =>
  typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string';

/**
 * Notices can be missed here as over LISTEN (Realtime down, a reconnect): consumers read the event
 * log and poll, so a missed notice costs latency, not data. start() therefore never fails because
 * Realtime is away: it logs, and realtime-js keeps rejoining with backoff.
 */
export function supabaseRealtimeFeed(
  client: SupabaseClient,
  logger: Logger,
  options: RealtimeFeedOptions = {},
): ChangeFeed {
  const listeners = new Set<FeedListener>();
  let channel: RealtimeChannel | null = null;
  let joined = false;

  const dispatch = (message: { payload?: unknown }) => {
    const payload = message.payload;
    if (!isNotice(payload)) {
      logger.warn({ payload }, 'ignored a malformed Realtime feed message');
      return;
    }
    // realtime.send adds a message id to the payload; the notice is the rest.
    const { id: _messageId, ...notice } = payload;
    for (const listener of listeners) {
      try {
        listener(notice as FeedNotice);
      } catch (error) {
        logger.error({ err: error }, 'feed listener failed');
      }
    }
  };

  return {
    async start() {
      if (channel) return;
      // Sets the access token (the service role key) before the join, so a private channel joins
      // with it rather than with whatever the socket opened with.
      await client.realtime.setAuth();
      const current = client.channel(REALTIME_FEED_TOPIC, {
        config: { private: true, broadcast: { self: false, ack: false } },
      });
      channel = current;
      current.on('broadcast', { event: REALTIME_NOTICE_EVENT }, dispatch);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn(
            { topic: REALTIME_FEED_TOPIC, timeoutMs: options.joinTimeoutMs ?? 10_000 },
            'Supabase Realtime did not join in time; changes are picked up by polling until it does',
          );
          resolve();
        }, options.joinTimeoutMs ?? 10_000);
        current.subscribe((status, error) => {
          if (status === 'SUBSCRIBED') {
            if (!joined) logger.info({ topic: REALTIME_FEED_TOPIC }, 'listening on Supabase Realtime');
            else logger.info({ topic: REALTIME_FEED_TOPIC }, 'Supabase Realtime channel rejoined');
            joined = true;
          } else if (channel === current && (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT')) {
            logger.warn(
              { topic: REALTIME_FEED_TOPIC, status, err: error },
              'Supabase Realtime channel failed; polling covers until it rejoins',
            );
          }
          if (status !== 'CLOSED') {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      listeners.clear();
      const current = channel;
      channel = null;
      // Leaving waits for the server's reply; a server that went away gets a short wait, not 10 s.
      if (current) await Promise.race([client.removeChannel(current).catch(() => undefined), delay(2000)]);
      await Promise.race([client.realtime.disconnect().catch(() => undefined), delay(2000)]);
    },
  };
}
