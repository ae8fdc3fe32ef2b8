/**
 * Per-caller quotas: concurrent WebSocket connections and SSE streams, and the mutation rate.
 * Counted in this process's memory: with N API processes behind a load balancer a caller gets up to
 * N times each quota (documented in docs/security.md). Refusals are RATE_LIMITED with
 * `extensions.retryAfter` (seconds) where waiting helps, and an HTTP Retry-After header.
 */
import type { ServerResponse } from 'node:http';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { getOperationAST, type GraphQLError } from 'graphql';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Viewer } from '../auth/roles.js';
import { callerKey } from './caller-key.js';
import type { ServerContext } from './yoga.js';

export const RATE_LIMITED = 'RATE_LIMITED';

/** Seconds a client refused for too many open streams is told to wait before trying again. */
export const STREAM_QUOTA_RETRY_AFTER_S = 5;

/** The window CAS_MUTATION_RATE_LIMIT counts over. */
export const MUTATION_RATE_WINDOW_S = 60;

/**
 * A RATE_LIMITED GraphQL error. Over HTTP (`overHttp`) it makes yoga answer 429 with Retry-After;
 * over WebSocket it carries no transport extensions.
 */
export function rateLimitedError(message: string, retryAfterS?: number, overHttp = false): GraphQLError {
  const retry = retryAfterS === undefined ? {} : { retryAfter: retryAfterS };
  const retryHeader = retryAfterS === undefined ? {} : { headers: { 'retry-after': String(retryAfterS) } };
  return createGraphQLError(message, {
    extensions: {
      code: RATE_LIMITED,
      ...retry,
      ...(overHttp ? { http: { status: 429, ...retryHeader } } : {}),
    },
  });
}

/**
 * At most `max` things (sockets, streams) open at once per key; 0 means no limit. `acquire` says
 * whether one more fits and counts it; each successful acquire is paired with one `release`.
 */
export class ConcurrencyQuota {
  private readonly open = new Map<string, number>();
  constructor(readonly max: number) {}

  acquire(key: string): boolean {
    const count = this.open.get(key) ?? 0;
    if (this.max > 0 && count >= this.max) return false;
    this.open.set(key, count + 1);
    return true;
  }

  release(key: string): void {
    const count = (this.open.get(key) ?? 1) - 1;
    if (count <= 0) this.open.delete(key);
    else this.open.set(key, count);
  }
}

/**
 * Holds one SSE slot for the caller while the response stays open; answers 429 RATE_LIMITED (as a
 * GraphQL-over-HTTP error body) and returns false when the caller has too many open.
 */
export function holdStreamSlot(quota: ConcurrencyQuota, key: string, res: ServerResponse): boolean {
  if (!quota.acquire(key)) {
    const error = rateLimitedError(
      `Too many open event streams for this caller (at most ${quota.max}); close one first`,
      STREAM_QUOTA_RETRY_AFTER_S,
    );
    res.writeHead(429, {
      'content-type': 'application/json; charset=utf-8',
      'retry-after': String(STREAM_QUOTA_RETRY_AFTER_S),
    });
    res.end(JSON.stringify({ errors: [error.toJSON()] }));
    return false;
  }
  res.once('close', () => quota.release(key));
  return true;
}

type QuotaContext = ServerContext & { request?: Request; viewer?: Pick<Viewer, 'id'> };

/**
 * Who the GraphQL context belongs to, for quotas: the authenticated viewer, else the client's
 * address (HTTP and WebSocket contexts both carry `req`).
 */
const callerOfContext = (context: QuotaContext | undefined) =>
  callerKey({ viewerId: context?.viewer?.id, remoteAddress: context?.req?.socket.remoteAddress });

/**
 * At most `perMinute` mutations per caller per minute (0: no limit), over HTTP and WebSocket alike.
 * A refused mutation does not run: its result is one RATE_LIMITED error with `retryAfter`.
 */
export function useMutationRateLimit(perMinute: number): Plugin<QuotaContext> {
  if (perMinute <= 0) return {};
  const limiter = new RateLimiterMemory({ points: perMinute, duration: MUTATION_RATE_WINDOW_S });
  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation !== 'mutation') return;
      try {
        await limiter.consume(callerOfContext(args.contextValue));
      } catch (refusal) {
        if (!(refusal instanceof RateLimiterRes)) throw refusal;
        const retryAfterS = Math.max(1, Math.ceil(refusal.msBeforeNext / 1000));
        setResultAndStopExecution({
          errors: [
            rateLimitedError(
              `Too many mutations from this caller (at most ${perMinute} a minute); retry in ${retryAfterS} s`,
              retryAfterS,
              args.contextValue?.request !== undefined,
            ),
          ],
        });
      }
    },
  };
}
