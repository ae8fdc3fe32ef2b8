/**
 * Serves the built dashboard (web/dist) at /: index.html (never cached: it names the current
 * assets) and /assets/<hashed name> (cached for a year: a new build has new names). Files are read
 * once, gzip-compressed once, and answered from memory. Only GET and HEAD, only the files of the
 * build: a path is looked up in the set of built files, never joined onto the file system.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DIST_DIR } from './build.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * What the page may load and connect to: itself only (its API on the same origin, over HTTP and
 * WebSocket); no framing by other sites.
 */
export const DASHBOARD_CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface StaticFile {
  body: Buffer;
  gzipped: Buffer;
  contentType: string;
  cacheControl: string;
}

export interface Dashboard {
  /** Answers the request when it is for the dashboard; false to let the caller route it. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** The files served, by URL path (for tests and the start-up log). */
  readonly paths: readonly string[];
}

/** Loads the build; null when there is none (the caller says so and serves the API only). */
export async function loadDashboard(dir = DIST_DIR): Promise<Dashboard | null> {
  const index = await readFile(path.join(dir, 'index.html')).catch(() => null);
  if (!index) return null;
  const files = new Map<string, StaticFile>();
  const add = (urlPath: string, fileName: string, body: Buffer, cacheControl: string) =>
    files.set(urlPath, {
      body,
      gzipped: gzipSync(body),
      contentType: CONTENT_TYPES[path.extname(fileName)] ?? 'application/octet-stream',
      cacheControl,
    });
  add('/', 'index.html', index, 'no-cache');
  for (const name of await readdir(path.join(dir, 'assets')).catch(() => [] as string[])) {
    add(`/assets/${name}`, name, await readFile(path.join(dir, 'assets', name)), IMMUTABLE);
  }
  return {
    paths: [...files.keys()],
    handle(req, res) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      const file = files.get((req.url ?? '/').split('?')[0]!);
      if (!file) return false;
      const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
      const body = gzip ? file.gzipped : file.body;
      res.writeHead(200, {
        'content-type': file.contentType,
        'content-length': body.length,
        'cache-control': file.cacheControl,
        'content-security-policy': DASHBOARD_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        vary: 'accept-encoding',
        ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    },
  };
}
