/**
 * The HTTP server: GraphQL (yoga) and GraphiQL at /graphql, graphql-ws on the same port and path,
 * /health and /ready. `buildApp` wires; `start` listens; `stop` closes WebSockets with 1001,
 * then HTTP. The runtime belongs to the caller (main.ts shuts it down after `stop`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAuthenticator } from '../auth/viewer.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { AgentRuntime } from '../runtime/agent-runtime.js';
import { existsSync } from 'node:fs';
import { callerOfRequest } from './caller-key.js';
import { createOriginPolicy } from './cors.js';
import { createGraphiQLPage, wantsGraphiQL } from './graphiql.js';
import { sendJson, sendLiveness, sendReadiness } from './health.js';
import { DEFAULT_LIMITS, type ApiLimits } from './limits.js';
import { ConcurrencyQuota, holdStreamSlot } from './quotas.js';
import { loadTrustedDocuments } from './trusted-documents.js';
import { attachGraphQLWebSocket } from './websocket.js';
import { createMetricsHandler, METRICS_PATH } from '../observability/metrics-endpoint.js';
import type { Dashboard } from '../dashboard/serve.js';
import { createYogaServer, GRAPHIQL_OPTIONS, GRAPHQL_PATH, type CasYoga } from './yoga.js';

/** How long `stop` lets requests in flight finish before closing their connections. */
export const IN_FLIGHT_GRACE_MS = 1_000;

export interface BuildAppOptions {
  config: Pick<
    Config,
    'port' | 'host' | 'mode' | 'auth' | 'corsOrigins' | 'trustedDocuments' | 'graphiql' | 'quotas' | 'metrics'
  >;
  runtime: AgentRuntime;
  logger: Logger;
  limits?: Partial<ApiLimits>;
  /** The built dashboard, served at /; null when there is none (/ says so). */
  dashboard?: Dashboard | null;
}

export interface App {
  server: Server;
  yoga: CasYoga;
  /** Listens on config.host:config.port (0 = a free port); resolves with the GraphQL URL. */
  start(): Promise<{ url: string }>;
  /** Closes WebSockets (1001 going away) and HTTP connections. Idempotent. */
  stop(): Promise<void>;
}

/** A URL a person can open: a wildcard bind address is shown as localhost. */
function publicUrl(address: AddressInfo): string {
  const wildcard = ['0.0.0.0', '::', ''].includes(address.address);
  const host = wildcard ? 'localhost' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}${GRAPHQL_PATH}`;
}

/** `/` without a built dashboard: one line saying why and where the API is. */
function sendNoDashboard(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
  res.end(
    `<!doctype html><title>CAS Runtime API</title><p>The dashboard is not built or is off ` +
      `(npm install builds it; CAS_DASHBOARD). The API and GraphiQL: <a href="${GRAPHQL_PATH}">${GRAPHQL_PATH}</a></p>`,
  );
}

export function buildApp(options: BuildAppOptions): App {
  const { config, runtime } = options;
  const logger = options.logger.child({ component: 'http' });
  const limits: ApiLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const authenticator = createAuthenticator({ auth: config.auth, apiKeys: runtime.apiKeys, logger });
  const originPolicy = createOriginPolicy(config.corsOrigins);
  const { mode, files } = config.trustedDocuments;
  // With the allow-list off, the manifests are optional: their documents are still known by hash.
  const documents = loadTrustedDocuments(mode === 'off' ? files.filter((file) => existsSync(file)) : files);
  const yoga = createYogaServer({
    runtime,
    logger: options.logger,
    limits,
    authenticator,
    security: {
      originPolicy,
      trustedDocuments: { mode, documents },
      quotas: config.quotas,
      graphiql: config.graphiql,
    },
  });
  const graphiql = config.graphiql ? createGraphiQLPage(GRAPHIQL_OPTIONS) : undefined;
  const sseStreams = new ConcurrencyQuota(config.quotas.maxSseStreamsPerCaller);
  const sendMetrics = createMetricsHandler(runtime.processMetrics, config.metrics.token, logger);

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const isRead = req.method === 'GET' || req.method === 'HEAD';
    if (path === '/health' && isRead) return sendLiveness(res);
    if (path === '/ready' && isRead) return void sendReadiness(res, runtime, logger);
    if (path === METRICS_PATH && isRead) return sendMetrics(req, res);
    if (options.dashboard?.handle(req, res)) return;
    if (path === '/' && isRead) return sendNoDashboard(res);
    if (path === GRAPHQL_PATH && graphiql && wantsGraphiQL(req)) {
      return void graphiql.send(req, res).catch((error: unknown) => {
        logger.error({ err: error }, 'GraphiQL page failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      });
    }
    const isEventStream = (req.headers.accept ?? '').includes('text/event-stream');
    if (isEventStream && !holdStreamSlot(sseStreams, callerOfRequest(req), res)) return;
    return void yoga(req, res);
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (error) {
      logger.error({ err: error }, 'request handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  });
  // Attached once listening: ws re-emits the HTTP server's errors, and graphql-ws prints those
  // with a stack, so a port in use would not read as one clear line (main.ts reports it).
  let ws: ReturnType<typeof attachGraphQLWebSocket> | undefined;

  let stopping: Promise<void> | undefined;
  return {
    server,
    yoga,
    start: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          ws = attachGraphQLWebSocket({
            server,
            yoga,
            logger,
            maxPayloadBytes: limits.maxBodyBytes,
            authenticator,
            originPolicy,
            maxSocketsPerCaller: config.quotas.maxSocketsPerCaller,
            maxOperationsPerSocket: config.quotas.maxSubscriptionsPerSocket,
            metrics: runtime.processMetrics,
          });
          runtime.processMetrics.countSockets(ws.openSockets);
          resolve({ url: publicUrl(server.address() as AddressInfo) });
        });
      }),
    stop: () =>
      (stopping ??= (async () => {
        await ws?.close();
        await new Promise<void>((resolve) => {
          // The callback also runs (with an error) when the server was never started.
          server.close(() => resolve());
          // Idle keep-alive sockets would hold close() forever; requests in flight (and SSE
          // streams) get a grace period, then are cut.
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), IN_FLIGHT_GRACE_MS).unref();
        });
        await yoga.dispose();
      })()),
  };
}
