/**
 * GraphQL over WebSocket (the graphql-transport-ws protocol of graphql-ws) on the HTTP server's
 * port and path. Operations run through yoga's envelop, so the limits, caches, context and error
 * mapping of HTTP apply unchanged. Browsers apply no CORS to WebSockets: upgrades from origins the
 * policy does not allow are refused here (403), and each caller has a socket quota, each socket an
 * operation quota. Live-only subscriptions whose results cannot differ share one execution per
 * event (shared-subscriptions.ts).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import { CloseCode, handleProtocols, makeServer } from 'graphql-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Authenticator, Caller } from '../auth/viewer.js';
import { isCasError } from '../errors.js';
import { isGraphQLError } from '../graphql/errors.js';
import type { Logger } from '../logger.js';
import { callerKey } from './caller-key.js';
import { onceAt } from './credential-expiry.js';
import { allowsUpgrade, type OriginPolicy } from './cors.js';
import type { CasMetrics } from '../observability/metrics.js';
import { ConcurrencyQuota, rateLimitedError } from './quotas.js';
import { SharedSubscriptions, shareKey, type SubscriberSocket } from './shared-subscriptions.js';
import { GRAPHQL_PATH, type CasYoga, type RequestFacts } from './yoga.js';

/** Sent to clients when the server shuts down (RFC 6455 "going away"). */
export const GOING_AWAY = 1001;

/** A socket that does not send connection_init within this time is closed (4408). */
export const CONNECTION_INIT_TIMEOUT_MS = 3_000;

/** Interval of WebSocket pings; a client that misses a pong in this time is dropped. */
export const KEEP_ALIVE_MS = 12_000;

/**
 * Pings every socket of `wss` each `intervalMs` from one timer, and terminates those that did not
 * answer the previous ping: no timer per socket (graphql-ws's own `useServer` runs two per socket).
 * Returns the stop.
 */
export function keepSocketsAlive(wss: WebSocketServer, intervalMs: number): () => void {
  const awaitingPong = new WeakSet<WebSocket>();
  function answered(this: WebSocket) {
    awaitingPong.delete(this);
  }
  const onConnection = (socket: WebSocket) => socket.on('pong', answered);
  wss.on('connection', onConnection);
  const timer = setInterval(() => {
    for (const socket of wss.clients) {
      if (socket.readyState !== socket.OPEN) continue;
      if (awaitingPong.has(socket)) {
        socket.terminate();
        continue;
      }
      awaitingPong.add(socket);
      socket.ping();
    }
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    wss.off('connection', onConnection);
  };
}

/**
 * Close code for a caller over its socket quota. The number graphql-ws uses for "too many
 * initialisation requests": its client treats it as fatal and does not retry in a loop.
 */
export const TOO_MANY_SOCKETS = 4429;

export interface GraphQLWebSocketServer {
  /** WebSocket connections open now (the cas_websocket_connections gauge). */
  openSockets(): number;
  /** Closes every socket with GOING_AWAY and stops accepting new ones. */
  close(): Promise<void>;
}

/**
 * Closes `socket` with 4403 when its credentials expire. graphql-ws has no message to refresh a
 * token: the client reconnects with a fresh one (docs/security.md).
 */
function closeAtExpiry(socket: WebSocket, expiresAt: Date): void {
  const cancel = onceAt(expiresAt, () => socket.close(CloseCode.Forbidden, 'Token expired'));
  socket.once('close', cancel);
}

/** The credentials of a socket: connection_init's `authorization`, else the upgrade's header. */
function socketAuthorization(
  connectionParams: Readonly<Record<string, unknown>> | undefined,
  upgradeHeader: string | undefined,
): string | undefined {
  const fromPayload = connectionParams?.authorization ?? connectionParams?.Authorization;
  return typeof fromPayload === 'string' ? fromPayload : upgradeHeader;
}

type EnvelopedRoot = {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
  /** Set for a subscriber of a shared stream: its key and how to start the stream when none runs. */
  shared?: {
    key: string;
    start: (signal: AbortSignal) => Promise<unknown>;
    subscriber: { id: string; socket: SubscriberSocket };
  };
};

/**
 * What a socket keeps of its upgrade request for its whole life, as `ctx.extra.request`: the
 * headers operations read and the client's address. The request itself, with its raw headers and
 * stream state, was about a tenth of an idle subscriber's memory.
 */
function upgradeFacts(request: IncomingMessage): RequestFacts {
  const { authorization, 'x-request-id': requestId } = request.headers;
  return {
    headers: { authorization, 'x-request-id': requestId },
    socket: { remoteAddress: request.socket.remoteAddress },
  };
}

/** graphql-ws's `ctx.extra` for our sockets. */
interface SocketExtra {
  readonly socket: WebSocket;
  readonly request: RequestFacts;
}

const closedSignals = new WeakMap<WebSocket, AbortSignal>();

/** One signal per socket, aborted when it closes: what an operation's context calls "the client went away". */
function closedSignal(socket: WebSocket): AbortSignal {
  let signal = closedSignals.get(socket);
  if (!signal) {
    const controller = new AbortController();
    socket.once('close', () => controller.abort());
    signal = controller.signal;
    closedSignals.set(socket, signal);
  }
  return signal;
}

/** A graphql-ws socket as a shared stream writes to it (the `next` messages of its members). */
function subscriberSocket(socket: WebSocket): SubscriberSocket {
  return {
    send: (frame) => {
      if (socket.readyState === socket.OPEN) socket.send(frame);
    },
    bufferedBytes: () => socket.bufferedAmount,
  };
}

export function attachGraphQLWebSocket(options: {
  server: Server;
  yoga: CasYoga;
  logger: Logger;
  maxPayloadBytes: number;
  authenticator: Authenticator;
  originPolicy: OriginPolicy;
  /** Open sockets per caller and operations in flight per socket; 0 means no limit. */
  maxSocketsPerCaller: number;
  maxOperationsPerSocket: number;
  /** The process's metrics: the subscription gauges count the subscribers of shared streams. */
  metrics: CasMetrics;
}): GraphQLWebSocketServer {
  const { server, yoga, logger, originPolicy, authenticator, metrics } = options;
  const shared = new SharedSubscriptions({
    subscriberStarted: () => metrics.subscriptionStarted(),
    subscriberEnded: () => metrics.subscriptionEnded(),
    streamStarted: () => metrics.sharedStreamStarted(),
    streamEnded: () => metrics.sharedStreamEnded(),
    resultComputed: () => metrics.sharedResultComputed(),
  });
  const callers = new WeakMap<WebSocket, Caller>();
  const wss = new WebSocketServer({
    server,
    path: GRAPHQL_PATH,
    maxPayload: options.maxPayloadBytes,
    verifyClient: ({ req }, done) => {
      if (allowsUpgrade(originPolicy, req)) return done(true);
      logger.info({ origin: req.headers.origin }, 'websocket upgrade refused: origin not allowed');
      done(false, 403, 'Origin not allowed (CAS_CORS_ORIGINS)');
    },
  });
  wss.on('error', (error) => logger.error({ err: error }, 'websocket server error'));
  const sockets = new ConcurrencyQuota(options.maxSocketsPerCaller);
  /** The caller each counted socket was charged to, released when it closes. */
  const chargedTo = new WeakMap<object, string>();

  const graphqlWs = makeServer<Record<string, unknown> | undefined, SocketExtra>({
    connectionInitWaitTimeout: CONNECTION_INIT_TIMEOUT_MS,
    // Authenticates once per socket (refused credentials close it with 4403 Forbidden), then
    // charges the socket to its caller: the viewer when known, else the client's address.
    onConnect: async (ctx) => {
      const authorization = socketAuthorization(
        ctx.connectionParams,
        ctx.extra.request.headers.authorization,
      );
      let caller: Caller;
      try {
        caller = await authenticator.authenticate(authorization);
      } catch (error) {
        if (isCasError(error)) return false;
        throw error;
      }
      const key = callerKey({
        viewerId: caller.viewer.id,
        remoteAddress: ctx.extra.request.socket.remoteAddress,
      });
      if (!sockets.acquire(key)) {
        logger.info({ caller: key }, 'websocket refused: too many sockets for this caller');
        ctx.extra.socket.close(
          TOO_MANY_SOCKETS,
          `Too many sockets for this caller (at most ${sockets.max}); RATE_LIMITED`,
        );
        return false;
      }
      chargedTo.set(ctx, key);
      callers.set(ctx.extra.socket, caller);
      if (caller.expiresAt) closeAtExpiry(ctx.extra.socket, caller.expiresAt);
      return true;
    },
    onClose: (ctx) => {
      const caller = chargedTo.get(ctx);
      if (caller !== undefined) sockets.release(caller);
    },
    execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
    subscribe: (args) => {
      const root = args.rootValue as EnvelopedRoot;
      const share = root.shared;
      return (share ? shared.join(share.key, share.start, share.subscriber) : root.subscribe(args)) as never;
    },
    onSubscribe: async (ctx, id, payload) => {
      // ctx.subscriptions already holds this operation.
      const max = options.maxOperationsPerSocket;
      if (max > 0 && Object.keys(ctx.subscriptions).length > max) {
        return [rateLimitedError(`Too many operations on this socket (at most ${max}); complete one first`)];
      }
      const caller = callers.get(ctx.extra.socket);
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
        ...ctx,
        req: ctx.extra.request,
        socket: ctx.extra.socket,
        signal: closedSignal(ctx.extra.socket),
        caller,
        params: payload,
      });
      let document;
      try {
        document = parse(payload.query);
      } catch (error) {
        if (isGraphQLError(error)) return [error];
        throw error;
      }
      const errors = validate(schema, document);
      if (errors.length > 0) return errors;
      const key = shareKey({
        schema,
        document,
        operationName: payload.operationName,
        variables: payload.variables,
        viewer: caller?.viewer,
      });
      if (key !== null) {
        // Runs once per shared stream, in a context of its own: no subscriber's socket ends it.
        const start = async (signal: AbortSignal) => {
          const stream = yoga.getEnveloped({
            req: ctx.extra.request,
            signal,
            caller,
            params: payload,
            sharedSubscription: true,
          });
          return stream.subscribe({
            schema: stream.schema,
            operationName: payload.operationName,
            document,
            variableValues: payload.variables,
            contextValue: await stream.contextFactory(),
          });
        };
        return {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: null,
          rootValue: {
            execute,
            subscribe,
            shared: { key, start, subscriber: { id, socket: subscriberSocket(ctx.extra.socket) } },
          } satisfies EnvelopedRoot,
        } satisfies ExecutionArgs;
      }
      const args: ExecutionArgs = {
        schema,
        operationName: payload.operationName,
        document,
        variableValues: payload.variables,
        contextValue: await contextFactory(),
        rootValue: { execute, subscribe } satisfies EnvelopedRoot,
      };
      return args;
    },
  });
  // graphql-ws's `useServer` for ws, as its docs invite (copy and adjust): the socket keeps the
  // facts of its upgrade request rather than the request, and keepSocketsAlive pings every socket.
  wss.options.handleProtocols = handleProtocols;
  wss.on('connection', (socket, request) => {
    // A client's bad frame (too large: 1009, malformed: 1002): ws closes the socket with that
    // code. The client's doing, so info, with the code and message and no stack.
    socket.once('error', (error: Error & { code?: string }) =>
      logger.info({ code: error.code, reason: error.message }, 'websocket closed on a protocol error'),
    );
    const closed = graphqlWs.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', async (data) => {
            try {
              await handle(String(data));
            } catch (error) {
              logger.error({ err: error }, 'graphql-ws message handling failed');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            }
          }),
      },
      { socket, request: upgradeFacts(request) },
    );
    socket.once('close', (code, reason) => void closed(code, String(reason)));
  });
  const stopKeepAlive = keepSocketsAlive(wss, KEEP_ALIVE_MS);

  return {
    openSockets: () => wss.clients.size,
    async close() {
      stopKeepAlive();
      for (const socket of wss.clients) socket.close(GOING_AWAY, 'Going away');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

export { CloseCode };
