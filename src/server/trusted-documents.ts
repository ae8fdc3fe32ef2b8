/**
 * Trusted documents and automatic persisted queries (APQ), on one wire format: the client sends
 * `extensions.persistedQuery = { version: 1, sha256Hash }`, with or without the query text.
 *
 * - Trusted documents are the operations of our own clients, listed by GraphQL Code Generator's
 *   client preset in persisted-documents.json (`{ "sha256:<hex>": "<document>" }`). They are always
 *   known by hash.
 * - APQ (@graphql-yoga/plugin-apq): an unknown hash answers PERSISTED_QUERY_NOT_FOUND; the client
 *   then sends the query with its hash, which is checked and remembered (in this process's memory).
 * - CAS_TRUSTED_DOCUMENTS: `off` runs any document; `allow` runs trusted documents for everyone and
 *   other documents for callers `allowArbitrary` admits; `only` runs trusted documents only.
 *   Refusals are PERSISTED_QUERY_ONLY (403), over HTTP, SSE and WebSocket alike.
 */
import { readFileSync } from 'node:fs';
import { createInMemoryAPQStore, useAPQ, type APQStore } from '@graphql-yoga/plugin-apq';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import type { TrustedDocumentsMode } from '../config.js';
import type { GraphQLContext } from '../graphql/context.js';

export const PERSISTED_QUERY_ONLY = 'PERSISTED_QUERY_ONLY';

/** How many APQ documents a process remembers, and for how long (ms). */
export const APQ_CACHE = { max: 1_000, ttl: 3_600_000 };

/** Document text by sha256 hash. */
export type TrustedDocuments = ReadonlyMap<string, string>;

export class TrustedDocumentsError extends Error {
  override readonly name = 'TrustedDocumentsError';
}

/** Reads persisted-documents manifests (`{ hash: document }`); a missing or malformed file is an error. */
export function loadTrustedDocuments(files: readonly string[]): TrustedDocuments {
  const documents = new Map<string, string>();
  for (const file of files) {
    let manifest: unknown;
    try {
      manifest = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new TrustedDocumentsError(
        `cannot read trusted documents from ${file} (${(error as Error).message}); ` +
          'run `npm run codegen` or set CAS_TRUSTED_DOCUMENTS_FILE',
      );
    }
    if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) {
      throw new TrustedDocumentsError(
        `${file} is not a persisted-documents manifest ({ "hash": "document" })`,
      );
    }
    for (const [hash, document] of Object.entries(manifest)) {
      // The client preset writes "sha256:<hex>"; APQ clients send the bare hex.
      if (typeof document === 'string') documents.set(hash.replace(/^sha256:/, ''), document);
    }
  }
  return documents;
}

/** Whether this caller may run documents that are not trusted, in `allow` mode: admins only. */
export function allowArbitrary(context: GraphQLContext): boolean {
  return context.viewer.role === 'admin';
}

const notTrusted = () =>
  createGraphQLError('Only trusted (persisted) documents are accepted here; send a known document id', {
    extensions: { code: PERSISTED_QUERY_ONLY, http: { status: 403 } },
  });

/** The query text the request carries, after APQ resolved its hash (HTTP) or as sent (WebSocket). */
const queryOf = (context: { params?: { query?: string } } | undefined) => context?.params?.query;

export function trustedDocumentPlugins(options: {
  mode: TrustedDocumentsMode;
  documents: TrustedDocuments;
}): Plugin[] {
  const { mode, documents } = options;
  const trustedTexts = new Set(documents.values());
  const isTrusted = (query: string | undefined) => query !== undefined && trustedTexts.has(query);
  const learned = createInMemoryAPQStore(APQ_CACHE);
  const store: APQStore = {
    get: (hash) => documents.get(hash) ?? (mode === 'only' ? null : learned.get(hash)),
    // In `only` mode nothing is learned: an unknown document stays unknown.
    set: (hash, query) => (mode === 'only' || documents.has(hash) ? undefined : learned.set(hash, query)),
  };
  const policy: Plugin<GraphQLContext & { params?: { query?: string } }> = {
    // `only`: refused before parsing, so an untrusted document costs nothing and reveals nothing.
    onParse({ context }) {
      if (mode === 'only' && !isTrusted(queryOf(context))) throw notTrusted();
    },
    // `allow`: the caller is known once the context is built.
    onExecute({ args, setResultAndStopExecution }) {
      if (mode === 'allow' && !isTrusted(queryOf(args.contextValue)) && !allowArbitrary(args.contextValue)) {
        setResultAndStopExecution({ errors: [notTrusted()] });
      }
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      if (mode === 'allow' && !isTrusted(queryOf(args.contextValue)) && !allowArbitrary(args.contextValue)) {
        setResultAndStopExecution({ errors: [notTrusted()] });
      }
    },
  };
  return [useAPQ({ store }), policy as Plugin];
}
