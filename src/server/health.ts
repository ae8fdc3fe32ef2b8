/**
 * Liveness and readiness for orchestrators:
 * - GET /health: the process answers (no database call); always 200 while it runs.
 * - GET /ready: the runtime's healthCheck: 200 when the database answers and the migrations are
 *   applied, else 503 (so a load balancer stops sending traffic).
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../logger.js';
import type { AgentRuntime } from '../runtime/agent-runtime.js';

const startedAt = Date.now();

function sendJson(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

export function sendLiveness(res: ServerResponse) {
  sendJson(res, 200, { status: 'ok', uptimeSeconds: (Date.now() - startedAt) / 1000 });
}

export async function sendReadiness(res: ServerResponse, runtime: AgentRuntime, logger: Logger) {
  try {
    const health = await runtime.healthCheck();
    const ready = health.database === 'ok' && health.migrationsApplied;
    sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', ...health });
  } catch (error) {
    logger.warn({ err: error }, 'readiness check failed');
    sendJson(res, 503, { status: 'not ready', database: 'unreachable' });
  }
}

export { sendJson };
