/**
 * The context every resolver receives: who is calling, the runtime (the only way to data), this
 * operation's loaders, and a request id that log lines and masked errors carry.
 */
import { randomUUID } from 'node:crypto';
import type { ApiKeys } from '../auth/api-keys.js';
import { taskCreatorFilter, type Viewer } from '../auth/roles.js';
import type { Logger } from '../logger.js';
import type { AgentRuntime } from '../runtime/agent-runtime.js';
import { createLoaders, type Loaders } from './loaders.js';

export type { Role, Viewer } from '../auth/roles.js';

export interface GraphQLContext {
  /** The caller (src/auth): what the schema's authScopes check. */
  viewer: Viewer;
  /** API key management (createApiKey, revokeApiKey, apiKeys). */
  apiKeys: ApiKeys;
  runtime: AgentRuntime;
  loaders: Loaders;
  /** From a well-formed `x-request-id` header, else generated. */
  requestId: string;
  logger: Logger;
  /**
   * Aborted when the client goes away (the HTTP request is aborted, the WebSocket closes), so
   * long operations such as executeTask(wait: true) stop working for nobody.
   */
  signal: AbortSignal;
  /**
   * When the credentials of an SSE request expire: its subscriptions end then
   * (src/server/credential-expiry.ts). Null for WebSockets (the socket closes) and for
   * credentials without an expiry.
   */
  streamExpiresAt: Date | null;
}

/** Request ids a client may choose: short and printable, so they are safe in logs. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

export function requestIdFrom(header: string | null | undefined): string {
  return header && CLIENT_REQUEST_ID.test(header) ? header : randomUUID();
}

export function createContext(options: {
  runtime: AgentRuntime;
  logger: Logger;
  requestId?: string | null;
  signal?: AbortSignal;
  viewer: Viewer;
  apiKeys: ApiKeys;
  streamExpiresAt?: Date | null;
}): GraphQLContext {
  const requestId = requestIdFrom(options.requestId);
  return {
    viewer: options.viewer,
    apiKeys: options.apiKeys,
    runtime: options.runtime,
    loaders: createLoaders(options.runtime, { createdBy: taskCreatorFilter(options.viewer) }),
    requestId,
    logger: options.logger.child({ requestId, viewer: options.viewer.id }),
    signal: options.signal ?? new AbortController().signal,
    streamExpiresAt: options.streamExpiresAt ?? null,
  };
}
