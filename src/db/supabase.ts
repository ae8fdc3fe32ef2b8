import { createClient, type SupabaseClient, type WebSocketLikeConstructor } from '@supabase/supabase-js';
import pLimit from 'p-limit';
import WebSocket from 'ws';
import { CasError, ErrorCode, isCasError } from '../errors.js';
import { SupabaseError, type PostgrestErrorBody } from './supabase-error.js';
import { JsonArg, toCasError, type SqlArg, type SqlArgs, type SqlFunctions } from './sql-functions.js';
import type { PoolStats } from './database.js';

export { SupabaseError, type PostgrestErrorBody };

/**
 * The Supabase driver: the same cas_ SQL functions, called over PostgREST with `supabase.rpc()`.
 * Every state change and every read is one function, so there are no table reads here.
 */
export interface SupabaseSettings {
  /** The project URL, https://<ref>.supabase.co (SUPABASE_URL or NEXT_PUBLIC_SUPABASE_URL). */
  url: string;
  /** SUPABASE_SERVICE_ROLE_KEY: the service role (secret) key; it bypasses RLS. */
  serviceRoleKey: string;
}

/** How long one PostgREST request may take before it is abandoned. */
export const SUPABASE_REQUEST_TIMEOUT_MS = 30_000;

/**
 * A server-side client: no session to persist or refresh (the service role key is the credential),
 * and the `ws` package for Realtime, since Node 20 has no WebSocket of its own.
 */
export function createSupabaseClient(settings: SupabaseSettings): SupabaseClient {
  return createClient(settings.url, settings.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    db: { timeout: SUPABASE_REQUEST_TIMEOUT_MS },
    // ws's constructor takes more argument shapes than realtime-js declares; it is the one
    // realtime-js's own Node error message recommends.
    realtime: { transport: WebSocket as unknown as WebSocketLikeConstructor },
  });
}

const ARGUMENT_NAME = /^p_[a-z_]+$/;
const FUNCTION_NAME = /^cas_[a-z_]+$/;

/** JSON arguments go as their value; dates as ISO strings; undefined arguments are left out. */
function rpcArgument(arg: Exclude<SqlArg, undefined>): unknown {
  if (arg instanceof JsonArg) return arg.value === undefined ? null : arg.value;
  if (arg instanceof Date) return arg.toISOString();
  if (Array.isArray(arg)) return arg.map((item) => rpcArgument(item as Exclude<SqlArg, undefined>));
  return arg;
}

export function rpcBody(args: SqlArgs): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [name, arg] of Object.entries(args)) {
    if (arg === undefined) continue;
    if (!ARGUMENT_NAME.test(name)) throw new Error(`not a function argument name: ${name}`);
    body[name] = rpcArgument(arg);
  }
  return body;
}

/** The first "Caused by: ..." line postgrest-js puts in the details of a failed fetch. */
function fetchCause(body: PostgrestErrorBody): string {
  const cause = /Caused by: ([^\n]+)/.exec(body.details ?? '')?.[1];
  return cause ?? body.message ?? 'no response';
}

/**
 * Turns a failed call into the error the other drivers would throw: input the database refused
 * (custom CAS SQLSTATEs, constraint violations) becomes the same CasError; the rest becomes a
 * SupabaseError that says what to fix.
 */
export function supabaseFailure(url: string, fn: string, status: number, body: PostgrestErrorBody): Error {
  const mapped = toCasError(body);
  if (isCasError(mapped)) return mapped;
  const code = body.code || null;
  const said = body.message ? `: ${body.message}` : '';
  if (status === 0) {
    if (body.message?.startsWith('AbortError')) {
      return new SupabaseError(
        `SUPABASE_URL ${url} did not answer ${fn} within ${SUPABASE_REQUEST_TIMEOUT_MS / 1000} s`,
        status,
        code,
        body,
      );
    }
    return new SupabaseError(`cannot reach SUPABASE_URL ${url} (${fetchCause(body)})`, status, code, body);
  }
  if (code === '42501') {
    return new SupabaseError(
      `SUPABASE_SERVICE_ROLE_KEY may not call ${fn}${said}; it must be the project's service_role ` +
        `(secret) key, not the anon (publishable) key`,
      status,
      code,
      body,
    );
  }
  if (status === 401 || status === 403) {
    return new SupabaseError(
      `SUPABASE_SERVICE_ROLE_KEY was refused by ${url} (HTTP ${status}${said})`,
      status,
      code,
      body,
    );
  }
  if (code === 'PGRST202') {
    return new SupabaseError(
      `${fn} is not in the API of ${url}: deploy the schema with \`supabase db push\` ` +
        `(see docs/supabase.md)${said}`,
      status,
      code,
      body,
    );
  }
  if (!code) {
    return new SupabaseError(
      `SUPABASE_URL ${url} answered HTTP ${status} to ${fn}${said}; is it the project URL ` +
        `(https://<project-ref>.supabase.co)?`,
      status,
      code,
      body,
    );
  }
  return new SupabaseError(`${fn} failed on ${url} (HTTP ${status}, ${code})${said}`, status, code, body);
}

/**
 * Failures that say nothing about the request, only that the database could not be reached now:
 * no response (a reset connection, a timeout), a gateway's 502/503/504, PostgREST's own connection
 * errors (PGRST000-002) and the database's (SQLSTATE class 08, shutdown, too many connections).
 */
export function isTransientSupabaseFailure(error: SupabaseError): boolean {
  if ([0, 502, 503, 504].includes(error.status)) return true;
  const code = error.code ?? '';
  return /^PGRST00[0-2]$/.test(code) || code.startsWith('08') || code.startsWith('57P') || code === '53300';
}

/**
 * A transient failure as clients see it: UNAVAILABLE (retry), not an unexpected error. The request
 * may or may not have run, as with any dropped connection; the lease and version checks of the SQL
 * functions keep a retried write from applying twice where it matters.
 */
function unavailable(error: SupabaseError): CasError {
  return new CasError(ErrorCode.UNAVAILABLE, `the database did not answer: ${error.message}; retry`, {
    status: error.status,
    code: error.code,
  });
}

/** Requests in flight at once when the caller does not say (as many as a default Postgres pool). */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 20;

/**
 * The SqlFunctions port over PostgREST RPC. At most `maxConcurrentRequests` requests are in flight
 * at once, the rest wait their turn, as queries wait for a pool's connection in the other modes:
 * a burst (a thousand subscriptions replaying at once) must not open a thousand connections, which
 * overflows the gateway's accept queue and comes back as connections reset.
 */
export function supabaseSqlFunctions(
  client: SupabaseClient,
  url: string,
  maxConcurrentRequests = DEFAULT_MAX_CONCURRENT_REQUESTS,
): SqlFunctions & { poolStats(): PoolStats } {
  const inTurn = pLimit(maxConcurrentRequests);
  const call = async (fn: string, args: SqlArgs): Promise<unknown> => {
    if (!FUNCTION_NAME.test(fn)) throw new Error(`not a cas_ function name: ${fn}`);
    const { data, error, status } = await inTurn(() => client.rpc(fn, rpcBody(args)));
    if (error) {
      const failure = supabaseFailure(url, fn, status, error);
      throw failure instanceof SupabaseError && isTransientSupabaseFailure(failure)
        ? unavailable(failure)
        : failure;
    }
    return data;
  };
  return {
    async rows<Row>(fn: string, args: SqlArgs): Promise<Row[]> {
      const data = await call(fn, args);
      // Set-returning functions answer an array; a function returning one row answers an object.
      if (Array.isArray(data)) return data as Row[];
      return data == null ? [] : [data as Row];
    },
    async value<T>(fn: string, args: SqlArgs): Promise<T> {
      return (await call(fn, args)) as T;
    },
    // Requests in flight stand for connections in use: PostgREST holds one for each.
    poolStats: () => ({
      inUse: inTurn.activeCount,
      idle: maxConcurrentRequests - inTurn.activeCount,
      waiting: inTurn.pendingCount,
    }),
  };
}
