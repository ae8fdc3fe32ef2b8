/**
 * The context every resolver receives: the runtime (the only way to data), this operation's
 * loaders, and a request id that log lines and masked errors carry.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.js';
import type { AgentRuntime } from '../runtime/agent-runtime.js';
import { createLoaders, type Loaders } from './loaders.js';

export interface GraphQLContext {
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
}): GraphQLContext {
  const requestId = requestIdFrom(options.requestId);
  return {
    runtime: options.runtime,
    loaders: createLoaders(options.runtime),
    requestId,
    logger: options.logger.child({ requestId }),
    signal: options.signal ?? new AbortController().signal,
  };
}
