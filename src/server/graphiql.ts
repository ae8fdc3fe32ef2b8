/**
 * The GraphiQL page (offline bundle of @graphql-yoga/render-graphiql, ~9 MB of HTML and JS),
 * rendered once and served compressed (brotli or gzip, per Accept-Encoding) and cacheable: a
 * strong ETag, `Cache-Control: no-cache` (browsers keep it and revalidate), 304 on If-None-Match.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlib, gzip } from 'node:zlib';
import type { GraphiQLOptions } from 'graphql-yoga';

/** Brotli quality 11 takes tens of seconds on 9 MB; 5 is within 2% of 6 and a quarter quicker (≈2.4 s once). */
const BROTLI_QUALITY = 5;

type Encoding = 'br' | 'gzip' | 'identity';

interface RenderedPage {
  etag: string;
  bodies: Record<Encoding, Buffer>;
}

/** True for the requests yoga would answer with GraphiQL: a GET (or HEAD) that accepts HTML. */
export const wantsGraphiQL = (req: IncomingMessage) =>
  (req.method === 'GET' || req.method === 'HEAD') && (req.headers.accept ?? '').includes('text/html');

/** The first encoding the client accepts, by our preference (q-values other than 0 are not ranked). */
function chooseEncoding(acceptEncoding: string | undefined): Encoding {
  const accepted = new Set(
    (acceptEncoding ?? '')
      .split(',')
      .map((part) => part.trim().toLowerCase())
      .filter((part) => !/;\s*q=0(\.0*)?$/.test(part))
      .map((part) => part.split(';')[0]),
  );
  if (accepted.has('br')) return 'br';
  if (accepted.has('gzip')) return 'gzip';
  return 'identity';
}

async function renderPage(options: GraphiQLOptions): Promise<RenderedPage> {
  // Loaded with the first page request: the bundle's module holds about 28 MiB of strings that a
  // server nobody opens GraphiQL on need not keep.
  const { renderGraphiQL } = await import('@graphql-yoga/render-graphiql');
  const html = Buffer.from(renderGraphiQL(options));
  const [br, gzipped] = await Promise.all([
    promisify(brotliCompress)(html, {
      params: {
        [zlib.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
        [zlib.BROTLI_PARAM_SIZE_HINT]: html.length,
        [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT,
      },
    }),
    promisify(gzip)(html),
  ]);
  const etag = `"${createHash('sha256').update(html).digest('base64url').slice(0, 27)}"`;
  return { etag, bodies: { br, gzip: gzipped, identity: html } };
}

export interface GraphiQLPage {
  send(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export function createGraphiQLPage(options: GraphiQLOptions): GraphiQLPage {
  let page: Promise<RenderedPage> | undefined;
  return {
    async send(req, res) {
      const { etag, bodies } = await (page ??= renderPage(options));
      const headers = {
        etag,
        'cache-control': 'no-cache',
        vary: 'Accept-Encoding',
      };
      const ifNoneMatch = req.headers['if-none-match'];
      if (ifNoneMatch && ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)) {
        res.writeHead(304, headers);
        return void res.end();
      }
      const encoding = chooseEncoding(req.headers['accept-encoding']);
      const body = bodies[encoding];
      res.writeHead(200, {
        ...headers,
        'content-type': 'text/html; charset=utf-8',
        'content-length': body.length,
        ...(encoding === 'identity' ? {} : { 'content-encoding': encoding }),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    },
  };
}
