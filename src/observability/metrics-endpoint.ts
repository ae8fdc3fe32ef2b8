/**
 * GET /metrics: the Prometheus text exposition of this process. Who may scrape it: with
 * CAS_METRICS_TOKEN set, callers presenting `Authorization: Bearer <token>`; without, local callers
 * only (a loopback peer whose request no proxy forwarded), so `npm start` then `curl` just works and
 * nothing is exposed to the network by default. docs/operations.md.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';
import type { CasMetrics } from './metrics.js';

export const METRICS_PATH = '/metrics';

/** Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever its peer. */
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'];

const isLoopback = (address: string | undefined) =>
  !!address && (address === '::1' || /^(::ffff:)?127\./.test(address));

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Why `req` may not scrape, or null when it may. */
function refusal(
  req: IncomingMessage,
  token: string | undefined,
): { status: 401 | 403; message: string } | null {
  if (token) {
    const presented = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    // Compared as digests: equal lengths, constant time.
    if (timingSafeEqual(digest(presented), digest(token))) return null;
    return { status: 401, message: 'GET /metrics needs Authorization: Bearer <CAS_METRICS_TOKEN>\n' };
  }
  const forwarded = FORWARDING_HEADERS.some((name) => req.headers[name] !== undefined);
  if (isLoopback(req.socket.remoteAddress) && !forwarded) return null;
  return {
    status: 403,
    message: 'GET /metrics answers local callers only; set CAS_METRICS_TOKEN to scrape from elsewhere\n',
  };
}

/** Answers a GET or HEAD of /metrics. */
export function createMetricsHandler(
  metrics: CasMetrics,
  token: string | undefined,
  logger: Logger,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const refused = refusal(req, token);
    if (refused) {
      const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
      if (refused.status === 401) headers['www-authenticate'] = 'Bearer';
      res.writeHead(refused.status, headers).end(refused.message);
      return;
    }
    metrics
      .exposition()
      .then((body) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'GET /metrics failed');
        if (!res.headersSent)
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      });
  };
}

/**
 * A server with GET /metrics only, for processes without an HTTP API (`npm run worker` with
 * CAS_METRICS_PORT). Resolves once listening; `close` stops it.
 */
export async function serveMetrics(options: {
  host: string;
  port: number;
  metrics: CasMetrics;
  token: string | undefined;
  logger: Logger;
}): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const handle = createMetricsHandler(options.metrics, options.token, options.logger);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === METRICS_PATH && (req.method === 'GET' || req.method === 'HEAD')) return handle(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: this port serves GET /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    server,
    url: `http://${host}:${port}${METRICS_PATH}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
