/**
 * Who a quota counts against. One function, so every quota (sockets, SSE streams, mutation rate)
 * agrees on who the caller is: the signed-in user or API key when one is known, else the client's
 * IP address. SSE streams are counted before authentication runs, so by address.
 */
import type { IncomingMessage } from 'node:http';

export interface CallerIdentity {
  /** The viewer's id (user or API key) when the request is authenticated. */
  viewerId?: string | null;
  /** The TCP peer address (behind a reverse proxy, the proxy's: see docs/security.md). */
  remoteAddress?: string | null;
}

/** `user:<id>` for an authenticated viewer, else `ip:<address>`. */
export function callerKey({ viewerId, remoteAddress }: CallerIdentity): string {
  if (viewerId) return `user:${viewerId}`;
  return `ip:${remoteAddress ?? 'unknown'}`;
}

/** The caller of an HTTP request, by address, before any GraphQL context exists. */
export const callerOfRequest = (req: IncomingMessage | undefined): string =>
  callerKey({ remoteAddress: req?.socket.remoteAddress });
