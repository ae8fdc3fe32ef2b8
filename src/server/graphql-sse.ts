/**
 * The GraphQL over SSE protocol (graphql-sse) at /graphql/stream, in both of its modes:
 * - distinct connections: one POST per operation (as /graphql with Accept: text/event-stream);
 * - single connection: one event stream (PUT reserves it, GET opens it) carrying every operation
 *   the client POSTs with the `x-graphql-event-stream-token` header. Browsers on HTTP/1.1 keep at
 *   most six connections per origin, so a page following many streams needs this mode.
 * Operations go through yoga's envelope as on /graphql: the same authentication (each request's
 * Authorization header), validation, limits and masking. Every request that writes (PUT, POST,
 * DELETE) has a JSON body or a method browsers preflight, so the CORS allow-list guards it as it
 * guards /graphql. The single stream is counted against CAS_MAX_SSE_STREAMS_PER_CALLER (app.ts),
 * and the operations on it against CAS_MAX_SUBSCRIPTIONS_PER_SOCKET, as those of a WebSocket are.
 */
import { useGraphQLSSE } from '@graphql-yoga/plugin-graphql-sse';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { isCasError } from '../errors.js';
import { ConcurrencyQuota, rateLimitedError } from './quotas.js';

export const GRAPHQL_STREAM_PATH = '/graphql/stream';
/** The header graphql-sse clients send the reserved stream's token in (single connection mode). */
const STREAM_TOKEN_HEADER = 'x-graphql-event-stream-token';

/** Operations in flight per single-connection stream (by its token): at most `max` (0: no limit). */
function useOperationsPerStreamLimit(max: number): Plugin<{ request?: Request }> {
  const operations = new ConcurrencyQuota(max);
  return {
    onSubscribe({ args, setResultAndStopExecution }) {
      const token = args.contextValue.request?.headers.get(STREAM_TOKEN_HEADER);
      if (!token) return;
      if (!operations.acquire(token)) {
        setResultAndStopExecution({
          errors: [
            rateLimitedError(`Too many operations on this stream (at most ${max}); complete one first`),
          ],
        });
        return;
      }
      return {
        onSubscribeResult: ({ result }) => {
          // An operation refused before it streams ends here; a stream ends when its iterator does.
          if (!isAsyncIterable(result)) return operations.release(token);
          return { onEnd: () => operations.release(token) };
        },
      };
    },
  };
}

/** Parses the URL only when it may be the stream's: this runs for every request. */
const isStreamRequest = (request: Request) =>
  request.url.includes(GRAPHQL_STREAM_PATH) && new URL(request.url).pathname === GRAPHQL_STREAM_PATH;

/**
 * Refused credentials answer 401 UNAUTHENTICATED before graphql-sse sees the request (reserving,
 * opening or posting to a stream), as /graphql answers them: graphql-sse would turn an error of
 * the operation's context into an uninformative 400.
 */
function useStreamAuthentication(authenticate: (authorization: string | null) => Promise<unknown>): Plugin {
  return {
    async onRequest({ request, endResponse, fetchAPI }) {
      if (request.method === 'OPTIONS' || !isStreamRequest(request)) return;
      try {
        await authenticate(request.headers.get('authorization'));
      } catch (error) {
        if (!isCasError(error)) throw error;
        const body = { errors: [{ message: error.message, extensions: { code: error.code } }] };
        endResponse(
          new fetchAPI.Response(JSON.stringify(body), {
            status: 401,
            headers: { 'content-type': 'application/json; charset=utf-8', 'www-authenticate': 'Bearer' },
          }),
        );
      }
    },
  };
}

/**
 * A subscription refused before it streams (unauthorised, over a quota) is `{ errors }` without
 * `data`, which graphql-sse 2 mistakes for execution arguments ("Unable to detect operation AST",
 * 400): `data: null` makes it the result it is, delivered on the stream like any other.
 */
function useDataOnRefusedSubscriptions(): Plugin {
  return {
    onSubscribe: () => ({
      onSubscribeResult: ({ result, setResult }) => {
        if (!isAsyncIterable(result) && !('data' in result)) setResult({ ...result, data: null });
      },
    }),
  };
}

export function graphqlSsePlugins(options: {
  maxOperationsPerStream: number;
  authenticate: (authorization: string | null) => Promise<unknown>;
}): Plugin[] {
  return [
    useStreamAuthentication(options.authenticate),
    useGraphQLSSE({ endpoint: GRAPHQL_STREAM_PATH }) as Plugin,
    useDataOnRefusedSubscriptions(),
    useOperationsPerStreamLimit(options.maxOperationsPerStream) as Plugin,
  ];
}
