/**
 * Streams end when the credentials they were opened with expire. A WebSocket is closed with 4403
 * at the token's `exp` (websocket.ts); an SSE response is one HTTP request authenticated once, so
 * each of its subscriptions is ended here instead: a last `UNAUTHENTICATED` error, then complete.
 * The client reconnects with a fresh token and resumes from its last cursor.
 */
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import type { ExecutionResult } from 'graphql';

/** The longest delay setTimeout takes (about 24.8 days); later expiries are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `callback` once at `at` (at once if it has passed); returns a function that cancels it. */
export function onceAt(at: Date, callback: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const remaining = at.getTime() - Date.now();
    if (remaining <= 0) return callback();
    timer = setTimeout(arm, Math.min(remaining, MAX_TIMER_MS));
  };
  arm();
  return () => clearTimeout(timer);
}

export const CREDENTIALS_EXPIRED_MESSAGE =
  'the credentials of this stream expired; reconnect with a fresh token and resume from the last cursor';

const isAsyncIterable = (value: unknown): value is AsyncIterable<ExecutionResult> =>
  typeof value === 'object' && value !== null && Symbol.asyncIterator in value;

/** `source` until `expiresAt`; then one UNAUTHENTICATED error and the end. */
async function* untilExpiry(
  source: AsyncIterable<ExecutionResult>,
  expiresAt: Date,
): AsyncGenerator<ExecutionResult> {
  const iterator = source[Symbol.asyncIterator]();
  let cancel = () => {};
  const expired = new Promise<'expired'>((resolve) => (cancel = onceAt(expiresAt, () => resolve('expired'))));
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), expired]);
      if (next === 'expired') {
        yield {
          errors: [
            createGraphQLError(CREDENTIALS_EXPIRED_MESSAGE, { extensions: { code: 'UNAUTHENTICATED' } }),
          ],
        };
        return;
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    cancel();
    // Not awaited: a source blocked in next() may only settle its return() with its next value.
    void iterator.return?.();
  }
}

/** Ends each subscription of a request whose context carries `streamExpiresAt` at that time. */
export function useEndStreamsAtCredentialExpiry(): Plugin<{ streamExpiresAt?: Date | null }> {
  return {
    onSubscribe() {
      return {
        onSubscribeResult({ args, result, setResult }) {
          const expiresAt = args.contextValue.streamExpiresAt;
          if (expiresAt && isAsyncIterable(result)) setResult(untilExpiry(result, expiresAt));
        },
      };
    },
  };
}
