/**
 * The graphql-yoga instance: schema, per-request context, error mapping and masking, limits,
 * parse/validate caches and the offline GraphiQL (its JS, CSS and workers are bundled by
 * @graphql-yoga/render-graphiql, so it works without internet).
 */
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import {
  createGraphQLError,
  createYoga,
  type Plugin,
  type YogaLogger,
  type YogaServerInstance,
} from 'graphql-yoga';
import type { IncomingMessage } from 'node:http';
import type { Authenticator, Caller } from '../auth/viewer.js';
import { isCasError } from '../errors.js';
import { createContext, requestIdFrom, type GraphQLContext } from '../graphql/context.js';
import { maskError, useErrorMapping } from '../graphql/errors.js';
import { schema } from '../graphql/schema.js';
import type { Logger } from '../logger.js';
import type { AgentRuntime } from '../runtime/agent-runtime.js';
import { armorPlugins, type ApiLimits } from './limits.js';

export const GRAPHQL_PATH = '/graphql';

/** What the node:http adapter and graphql-ws hand to yoga as the server context. */
export interface ServerContext {
  req?: IncomingMessage;
  /** graphql-ws: aborted when the operation's socket closes (HTTP requests carry their own). */
  signal?: AbortSignal;
  /** A graphql-ws socket's caller, authenticated once at connection_init (src/server/websocket.ts). */
  caller?: Caller;
}

export type CasYoga = YogaServerInstance<ServerContext, GraphQLContext>;

const DEFAULT_QUERY = `# Welcome to the CAS Runtime API. Press the run button (or Ctrl-Enter).
# More examples: docs/api.md. Subscriptions run over WebSocket from here too.

query Agents {
  agents {
    id
    name
    status
    metrics { totalRuns successRate }
    recentTasks(first: 3) { id action status }
  }
}

mutation Ping {
  executeTask(input: { agentId: "marketer", action: "ping", wait: true, timeoutMs: 10000 }) {
    id
    status
    result
  }
}
`;

/** yoga's own log lines (few: start-up notices, errors outside execution) go to pino. */
function yogaLogger(logger: Logger): YogaLogger {
  const child = logger.child({ component: 'yoga' });
  const line =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) => {
      const [first, ...rest] = args;
      if (first instanceof Error) child[level]({ err: first, args: rest }, first.message);
      else child[level]({ args: rest }, String(first));
    };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/**
 * GET requests carry `variables` and `extensions` as JSON in the query string; yoga 5.24 answers
 * malformed JSON there with a 500. This answers 400 BAD_REQUEST before yoga parses the request.
 */
function useQueryStringJsonCheck(): Plugin {
  return {
    onRequestParse({ url }) {
      for (const name of ['variables', 'extensions']) {
        const value = url.searchParams.get(name);
        if (value === null) continue;
        try {
          JSON.parse(value);
        } catch {
          throw createGraphQLError(`"${name}" in the query string is not valid JSON`, {
            extensions: { http: { status: 400 }, code: 'BAD_REQUEST' },
          });
        }
      }
    },
  };
}

/**
 * Every HTTP answer carries the request id its log lines and masked errors carry: the client's own
 * `x-request-id` when well formed, else a generated one.
 */
function useRequestIdHeader(requestIds: WeakMap<Request, string>): Plugin {
  return {
    onRequest({ request }) {
      requestIds.set(request, requestIdFrom(request.headers.get('x-request-id')));
    },
    onResponse({ request, response }) {
      const requestId = requestIds.get(request);
      if (requestId) response.headers.set('x-request-id', requestId);
    },
  };
}

/**
 * The caller of an HTTP request. Refused credentials answer 401 with `WWW-Authenticate: Bearer`
 * and the code UNAUTHENTICATED (no operation runs).
 */
async function authenticateRequest(
  authenticator: Authenticator,
  request: Request | undefined,
): Promise<Caller> {
  try {
    return await authenticator.authenticate(request?.headers.get('authorization'));
  } catch (error) {
    if (!isCasError(error)) throw error;
    throw createGraphQLError(error.message, {
      extensions: { code: error.code, http: { status: 401, headers: { 'www-authenticate': 'Bearer' } } },
    });
  }
}

export function createYogaServer(options: {
  runtime: AgentRuntime;
  logger: Logger;
  limits: ApiLimits;
  authenticator: Authenticator;
}): CasYoga {
  const { runtime, logger, limits, authenticator } = options;
  const requestIds = new WeakMap<Request, string>();
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    context: async ({ request, req, caller, signal }) =>
      createContext({
        // HTTP and SSE: each request's own Authorization header; WebSocket: the socket's caller.
        viewer: (caller ?? (await authenticateRequest(authenticator, request))).viewer,
        apiKeys: authenticator.apiKeys,
        runtime,
        logger,
        signal: request?.signal ?? signal,
        requestId:
          (request && requestIds.get(request)) ??
          request?.headers.get('x-request-id') ??
          headerValue(req?.headers['x-request-id']),
      }),
    graphiql: { title: 'CAS Runtime API', subscriptionsProtocol: 'WS', defaultQuery: DEFAULT_QUERY },
    renderGraphiQL,
    // No landing page for unknown paths: a plain 404.
    landingPage: false,
    // /health and /ready are served by the node:http handler, with our own semantics.
    healthCheckEndpoint: '/.yoga/health',
    // isDev false: never attach original errors to responses, whatever NODE_ENV says.
    maskedErrors: { maskError, isDev: false },
    maxRequestBodySize: limits.maxBodyBytes,
    parserAndValidationCache: true,
    logging: yogaLogger(logger),
    plugins: [
      useRequestIdHeader(requestIds),
      useQueryStringJsonCheck(),
      ...armorPlugins(limits),
      useErrorMapping(logger),
    ],
  });
}
