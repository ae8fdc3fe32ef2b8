/**
 * GraphQL over WebSocket (the graphql-transport-ws protocol of graphql-ws) on the HTTP server's
 * port and path. Operations run through yoga's envelop, so the limits, caches, context and error
 * mapping of HTTP apply unchanged.
 */
import type { Server } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { isGraphQLError } from '../graphql/errors.js';
import type { Logger } from '../logger.js';
import { GRAPHQL_PATH, type CasYoga } from './yoga.js';

/** Sent to clients when the server shuts down (RFC 6455 "going away"). */
export const GOING_AWAY = 1001;

/** A socket that does not send connection_init within this time is closed (4408). */
export const CONNECTION_INIT_TIMEOUT_MS = 3_000;

/** Interval of WebSocket pings; a client that misses a pong in this time is dropped. */
export const KEEP_ALIVE_MS = 12_000;

export interface GraphQLWebSocketServer {
  /** Closes every socket with GOING_AWAY and stops accepting new ones. */
  close(): Promise<void>;
}

type EnvelopedRoot = {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
};

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

export function attachGraphQLWebSocket(options: {
  server: Server;
  yoga: CasYoga;
  logger: Logger;
  maxPayloadBytes: number;
}): GraphQLWebSocketServer {
  const { server, yoga, logger } = options;
  const wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: options.maxPayloadBytes });
  wss.on('error', (error) => logger.error({ err: error }, 'websocket server error'));

  const disposable = useServer(
    {
      connectionInitWaitTimeout: CONNECTION_INIT_TIMEOUT_MS,
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          signal: closedSignal(ctx.extra.socket),
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
    },
    wss,
    KEEP_ALIVE_MS,
  );

  return {
    async close() {
      // dispose() closes each socket with 1001 Going away and waits for the operations to end.
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

export { CloseCode };
