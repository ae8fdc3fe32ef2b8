/**
 * Which browser origins may call the API. Same-origin pages (GraphiQL on this server) and clients
 * that send no Origin (scripts, servers) always may; other origins only when listed in
 * CAS_CORS_ORIGINS. The allow-list drives yoga's CORS answers and the WebSocket upgrade check
 * (browsers apply no CORS to WebSockets, so the server must refuse foreign origins itself).
 */
import type { IncomingMessage } from 'node:http';
import type { CORSOptions, Plugin } from 'graphql-yoga';

/** Request headers a cross-origin client may send (the preflight answers with these). */
export const CORS_ALLOWED_HEADERS = [
  'content-type',
  'accept',
  'authorization',
  'x-request-id',
  'x-graphql-yoga-csrf',
  'apollo-require-preflight',
  'x-apollo-operation-name',
];

/** How long a browser may cache a preflight answer, in seconds. */
export const CORS_PREFLIGHT_MAX_AGE_S = 600;

export interface OriginPolicy {
  /** True when `origin` is absent, this server's own (`host` is the request's Host header), or listed. */
  allows(origin: string | null | undefined, host: string | null | undefined): boolean;
  /** yoga's `cors` option: CORS headers for listed origins only, never for others. */
  cors(request: Request): CORSOptions | false;
}

export function createOriginPolicy(allowedOrigins: readonly string[]): OriginPolicy {
  const listed = new Set(allowedOrigins);
  const isSameOrigin = (origin: string, host: string | null | undefined) => {
    try {
      return host !== undefined && host !== null && new URL(origin).host === host.toLowerCase();
    } catch {
      return false;
    }
  };
  return {
    allows: (origin, host) => !origin || listed.has(origin) || isSameOrigin(origin, host),
    cors(request) {
      const origin = request.headers.get('origin');
      // A single-entry list makes yoga answer with exactly that origin; an unlisted origin gets
      // no CORS headers at all, so the browser keeps the response from the page.
      if (!origin || !listed.has(origin)) return false;
      return {
        origin: [origin],
        credentials: true,
        methods: ['GET', 'POST'],
        allowedHeaders: CORS_ALLOWED_HEADERS,
        exposedHeaders: ['x-request-id', 'retry-after'],
        maxAge: CORS_PREFLIGHT_MAX_AGE_S,
      };
    },
  };
}

/** Answers differ by Origin, so shared caches must key on it (yoga adds Vary only for multi-origin lists). */
export function useVaryOnOrigin(): Plugin {
  return {
    onResponse({ response }) {
      const vary = response.headers.get('vary');
      if (!vary?.toLowerCase().includes('origin'))
        response.headers.set('vary', vary ? `${vary}, Origin` : 'Origin');
    },
  };
}

/** True when the WebSocket upgrade `req` comes from an origin the policy allows. */
export const allowsUpgrade = (policy: OriginPolicy, req: IncomingMessage) =>
  policy.allows(req.headers.origin, req.headers.host);
