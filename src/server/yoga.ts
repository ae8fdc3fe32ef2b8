/**
 * The graphql-yoga instance: schema, per-request context, error mapping and masking, limits,
 * parse/validate caches, browser protections (CORS allow-list, CSRF), trusted documents and APQ,
 * and quotas. GraphiQL itself is served by app.ts (graphiql.ts: compressed and cacheable).
 */
import { useEndStreamsAtCredentialExpiry } from './credential-expiry.js';
import { graphqlSsePlugins } from './graphql-sse.js';
import type { ValidationRule } from 'graphql';
import {
  createGraphQLError,
  createYoga,
  type GraphiQLOptions,
  type Plugin,
  type YogaLogger,
  type YogaServerInstance,
} from 'graphql-yoga';
import type { IncomingHttpHeaders } from 'node:http';
import type { Authenticator, Caller } from '../auth/viewer.js';
import type { Config } from '../config.js';
import { createContext, requestIdFrom, type GraphQLContext } from '../graphql/context.js';
import { isCasError, type CasError } from '../errors.js';
import { maskError, useErrorMapping } from '../graphql/errors.js';
import { schema } from '../graphql/schema.js';
import type { Logger } from '../logger.js';
import type { AgentRuntime } from '../runtime/agent-runtime.js';
import { useVaryOnOrigin, type OriginPolicy } from './cors.js';
import { csrfPlugins } from './csrf.js';
import {
  armorPlugins,
  useFieldRepetitionLimit,
  useRequestBodyLimit,
  useResponseSizeLimit,
  type ApiLimits,
} from './limits.js';
import { useMutationRateLimit } from './quotas.js';
import { observabilityPlugins } from '../observability/graphql.js';
import { trustedDocumentPlugins, type TrustedDocuments } from './trusted-documents.js';

export const GRAPHQL_PATH = '/graphql';

/** What the node:http adapter and graphql-ws hand to yoga as the server context. */
/**
 * What operations read of the request they came in: its headers and the client's address. An HTTP
 * request is one; a WebSocket keeps only these of its upgrade request (websocket.ts).
 */
export interface RequestFacts {
  headers: Pick<IncomingHttpHeaders, 'authorization' | 'x-request-id'>;
  socket: { remoteAddress?: string };
}

export interface ServerContext {
  req?: RequestFacts;
  /** graphql-ws: aborted when the operation's socket closes (HTTP requests carry their own). */
  signal?: AbortSignal;
  /** A graphql-ws socket's caller, authenticated once at connection_init (src/server/websocket.ts). */
  caller?: Caller;
  /**
   * graphql-ws: the execution of a stream several subscribers share (shared-subscriptions.ts); the
   * gauge of active subscriptions counts those subscribers, not this execution.
   */
  sharedSubscription?: boolean;
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

/** GraphiQL's settings (the page is rendered and served by graphiql.ts). */
export const GRAPHIQL_OPTIONS: GraphiQLOptions = {
  title: 'CAS Runtime API',
  subscriptionsProtocol: 'WS',
  defaultQuery: DEFAULT_QUERY,
};

/**
 * Schema introspection (`__schema`, `__type`) refused as a validation error, over HTTP and WebSocket
 * alike; `__typename` stays allowed. graphql-js's NoSchemaIntrospectionCustomRule does the same by
 * comparing types, which fails where a process holds two copies of graphql (vitest loads both), and
 * yoga's disable-introspection plugin keys on the HTTP request, which WebSocket operations lack: the
 * field names are all this needs.
 */
const INTROSPECTION_FIELDS = new Set(['__schema', '__type']);
function useNoIntrospection(): Plugin {
  const rule: ValidationRule = (context) => ({
    Field(node) {
      if (INTROSPECTION_FIELDS.has(node.name.value)) {
        context.reportError(
          createGraphQLError(
            `GraphQL introspection is not allowed here, but the query contained ${node.name.value}`,
            {
              nodes: [node],
              extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
            },
          ),
        );
      }
    },
  });
  return { onValidate: ({ addValidationRule }) => addValidationRule(rule) };
}

/** The CasError (an expected failure: the caller's input, a missing row) behind `error`, if any. */
function expectedFailure(error: Error): CasError | undefined {
  if (isCasError(error)) return error;
  const cause = (error as { originalError?: unknown }).originalError;
  return isCasError(cause) ? cause : undefined;
}

/**
 * yoga's own log lines (few: start-up notices, errors outside execution) go to pino. yoga logs each
 * error it masks, including expected failures raised while a subscription starts (a malformed
 * cursor): those are the caller's, logged at info with their code and no stack, so callers cannot
 * flood the error log.
 */
function yogaLogger(logger: Logger): YogaLogger {
  const child = logger.child({ component: 'yoga' });
  const line =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) => {
      const [first, ...rest] = args;
      const expected = first instanceof Error ? expectedFailure(first) : undefined;
      if (expected) child.info({ code: expected.code }, `client error: ${expected.message}`);
      else if (first instanceof Error) child[level]({ err: first, args: rest }, first.message);
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
    onRequestParse({ request, url }) {
      // Only GET reads them; reading `url` makes yoga parse the URL, which POST requests skip.
      if (request.method !== 'GET') return;
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

export interface YogaSecurity {
  originPolicy: OriginPolicy;
  trustedDocuments: { mode: Config['trustedDocuments']['mode']; documents: TrustedDocuments };
  quotas: Config['quotas'];
  /** GraphiQL and introspection; off, introspection queries fail validation. */
  graphiql: boolean;
}

export function createYogaServer(options: {
  runtime: AgentRuntime;
  logger: Logger;
  limits: ApiLimits;
  authenticator: Authenticator;
  security: YogaSecurity;
}): CasYoga {
  const { runtime, logger, limits, authenticator, security } = options;
  const requestIds = new WeakMap<Request, string>();
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    context: async ({ request, req, caller, signal }) => {
      // HTTP and SSE: each request's own Authorization header; WebSocket: the socket's caller
      // (closed at its expiry by websocket.ts).
      const requestCaller = caller ? null : await authenticateRequest(authenticator, request);
      return createContext({
        viewer: (caller ?? requestCaller!).viewer,
        streamExpiresAt: requestCaller?.expiresAt ?? null,
        apiKeys: authenticator.apiKeys,
        runtime,
        logger,
        signal: request?.signal ?? signal,
        requestId:
          (request && requestIds.get(request)) ??
          request?.headers.get('x-request-id') ??
          headerValue(req?.headers['x-request-id']),
      });
    },
    // Served by app.ts from a compressed, cached rendering (graphiql.ts).
    graphiql: false,
    cors: (request) => security.originPolicy.cors(request),
    // No file uploads in this API: multipart bodies are refused (csrf.ts), never parsed.
    multipart: false,
    // No landing page for unknown paths: a plain 404.
    landingPage: false,
    // /health and /ready are served by the node:http handler, with our own semantics.
    healthCheckEndpoint: '/.yoga/health',
    // isDev false: never attach original errors to responses, whatever NODE_ENV says.
    maskedErrors: { maskError, isDev: false },
    // Enforced by useRequestBodyLimit (limits.ts), which does not stream every body through a filter.
    maxRequestBodySize: false,
    parserAndValidationCache: true,
    logging: yogaLogger(logger),
    plugins: [
      useRequestIdHeader(requestIds),
      ...observabilityPlugins(runtime.processMetrics),
      useVaryOnOrigin(),
      ...csrfPlugins(),
      useQueryStringJsonCheck(),
      ...trustedDocumentPlugins(security.trustedDocuments),
      ...(security.graphiql ? [] : [useNoIntrospection()]),
      useFieldRepetitionLimit(limits.maxFieldRepetition),
      ...armorPlugins(limits),
      useMutationRateLimit(security.quotas.mutationsPerMinute) as Plugin,
      useResponseSizeLimit(security.quotas.maxResponseBytes),
      useErrorMapping(logger),
      useEndStreamsAtCredentialExpiry(),
      ...graphqlSsePlugins({
        maxOperationsPerStream: security.quotas.maxSubscriptionsPerSocket,
        authenticate: (authorization) => authenticator.authenticate(authorization),
      }),
      // Last: after every request parser has been chosen.
      useRequestBodyLimit(limits.maxBodyBytes),
    ],
  });
}
