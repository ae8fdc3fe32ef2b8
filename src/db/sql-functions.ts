import type { Database, SqlParam } from './database.js';
import { CasError, ErrorCode } from '../errors.js';
import { inSpan, SpanKind } from '../observability/tracing.js';

/**
 * Domain code reaches the database only through the cas_ SQL functions in supabase/migrations,
 * called with named arguments. The Postgres drivers call them with SQL; the Supabase driver
 * calls the same functions over PostgREST RPC. One implementation of the semantics.
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Marks an argument as JSON, so it is sent as JSON whatever its JavaScript type. */
export class JsonArg {
  constructor(readonly value: unknown) {}
}
export const json = (value: unknown) => new JsonArg(value);

export type SqlArg = SqlParam | JsonArg | undefined;
export type SqlArgs = Record<string, SqlArg>;

export interface SqlFunctions {
  /** Calls a set-returning function and returns its rows. */
  rows<Row>(fn: string, args: SqlArgs): Promise<Row[]>;
  /** Calls a function returning one scalar value. */
  value<T>(fn: string, args: SqlArgs): Promise<T>;
}

const FUNCTION_NAME = /^cas_[a-z_]+$/;
const ARGUMENT_NAME = /^p_[a-z_]+$/;

function callSql(fn: string, args: SqlArgs): { sql: string; params: SqlParam[] } {
  if (!FUNCTION_NAME.test(fn)) throw new Error(`not a cas_ function name: ${fn}`);
  const params: SqlParam[] = [];
  const named: string[] = [];
  for (const [name, arg] of Object.entries(args)) {
    if (arg === undefined) continue;
    if (!ARGUMENT_NAME.test(name)) throw new Error(`not a function argument name: ${name}`);
    if (arg instanceof JsonArg) {
      // Sent as text and cast, so both drivers pass the JSON through unchanged.
      params.push(arg.value === undefined ? null : JSON.stringify(arg.value));
      named.push(`${name} => $${params.length}::text::jsonb`);
    } else {
      params.push(arg);
      named.push(`${name} => $${params.length}`);
    }
  }
  return { sql: `select * from ${fn}(${named.join(', ')})`, params };
}

/** A call's text depends only on the function and the names of the arguments given: a few per function. */
const PREPARED = { prepare: true } as const;

export function sqlFunctionsOver(db: Database): SqlFunctions {
  return {
    async rows<Row>(fn: string, args: SqlArgs) {
      const { sql, params } = callSql(fn, args);
      return translateDatabaseError(() => db.query<Row>(sql, params, PREPARED));
    },
    async value<T>(fn: string, args: SqlArgs) {
      const { sql, params } = callSql(fn, args);
      const rows = await translateDatabaseError(() => db.query<Record<string, T>>(sql, params, PREPARED));
      return rows[0]![fn] as T;
    },
  };
}

/** SQLSTATEs that mean the caller's input was refused, not that the service failed. */
const SQLSTATE_CODES: Record<string, ErrorCode> = {
  CASNF: ErrorCode.NOT_FOUND,
  CASCF: ErrorCode.CONFLICT,
  CASBI: ErrorCode.BAD_USER_INPUT,
  CASCE: ErrorCode.CURSOR_EXPIRED,
  CASDL: ErrorCode.BAD_USER_INPUT,
  CASCY: ErrorCode.BAD_USER_INPUT,
  '23505': ErrorCode.CONFLICT, // unique_violation
  '23503': ErrorCode.BAD_USER_INPUT, // foreign_key_violation
  '23514': ErrorCode.BAD_USER_INPUT, // check_violation
  '23502': ErrorCode.BAD_USER_INPUT, // not_null_violation
  '22P02': ErrorCode.BAD_USER_INPUT, // invalid_text_representation
  '22001': ErrorCode.BAD_USER_INPUT, // string_data_right_truncation
  '22003': ErrorCode.BAD_USER_INPUT, // numeric_value_out_of_range
  '22007': ErrorCode.BAD_USER_INPUT, // invalid_datetime_format
  '22008': ErrorCode.BAD_USER_INPUT, // datetime_field_overflow
};

/** Refusals a caller tells apart by `details.reason` (a handler's ctx.call turns them into codes). */
const SQLSTATE_REASONS: Record<string, string> = {
  CASDL: 'CALL_DEPTH_EXCEEDED',
  CASCY: 'CALL_CYCLE',
};

/** The SQLSTATE (or PostgREST code) a driver's error carries, if any. */
const sqlStateOf = (error: unknown) => (error as { code?: unknown } | null)?.code;

/** Maps a database error with a known SQLSTATE to a CasError; other errors pass unchanged. */
export function toCasError(error: unknown): unknown {
  const sqlState = sqlStateOf(error);
  if (typeof sqlState !== 'string') return error;
  const code = SQLSTATE_CODES[sqlState];
  if (!code) return error;
  if (!sqlState.startsWith('CAS'))
    return new CasError(code, 'the input was refused by a database constraint', { sqlState });
  const reason = SQLSTATE_REASONS[sqlState];
  return new CasError(code, (error as Error).message, reason ? { reason } : undefined);
}

async function translateDatabaseError<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toCasError(error);
  }
}

/**
 * SQLSTATEs of a call that the database rolled back whole and that may pass when run again as it
 * was: a deadlock's victim (40P01) and a serialization failure (40001). Each call is a transaction
 * of its own, so running it again is as if the first run had not happened. The cas_ functions take
 * their row locks in one order (docs/architecture.md, "One lock order"), yet PostgreSQL can still make a
 * claim wait, without skipping, for a row its SKIP LOCKED would skip
 * (supabase/migrations/20261214000100_cas_completions_lock_only_their_leases.sql): rare, and
 * otherwise the caller (an API request, a worker's claim or heartbeat) would get the error. A task
 * attempt's outcome write is also retried by the attempt itself (runtime/task-run.ts), after 100 ms.
 */
const RUN_AGAIN_SQLSTATES = new Set(['40P01', '40001']);
/** Runs of one call that such failures may end, the first included; the last one's error is thrown. */
export const RUNS_PER_CALL = 3;
/**
 * Most time to wait before running a call again, a random part of it: the transaction that won
 * goes on meanwhile, and two victims of one another do not meet again at once.
 */
const RUN_AGAIN_JITTER_MS = 20;

/**
 * The same functions, each call run again (up to RUNS_PER_CALL runs) when the database picked it
 * as a deadlock's victim or could not serialise it; `ranAgain` hears of each such run.
 */
export function sqlFunctionsRunAgainOnConflict(
  sql: SqlFunctions,
  ranAgain: (fn: string, sqlState: string, run: number) => void,
): SqlFunctions {
  const call = async <T>(fn: string, once: () => Promise<T>): Promise<T> => {
    for (let run = 1; ; run += 1) {
      try {
        return await once();
      } catch (error) {
        const sqlState = sqlStateOf(error);
        if (typeof sqlState !== 'string' || !RUN_AGAIN_SQLSTATES.has(sqlState) || run >= RUNS_PER_CALL)
          throw error;
        ranAgain(fn, sqlState, run + 1);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * RUN_AGAIN_JITTER_MS));
      }
    }
  };
  return {
    rows: (fn, args) => call(fn, () => sql.rows(fn, args)),
    value: (fn, args) => call(fn, () => sql.value(fn, args)),
  };
}

/**
 * The same functions, each call a client span named after the SQL function (a bounded set), so a
 * trace shows every database round trip of a request or a task attempt. No-op with tracing off.
 */
export function tracedSqlFunctions(sql: SqlFunctions, system: 'postgresql'): SqlFunctions {
  const attributes = (fn: string) => ({ 'db.system.name': system, 'db.operation.name': fn });
  return {
    rows: (fn, args) =>
      inSpan(`db ${fn}`, { kind: SpanKind.CLIENT, attributes: attributes(fn) }, () => sql.rows(fn, args)),
    value: (fn, args) =>
      inSpan(`db ${fn}`, { kind: SpanKind.CLIENT, attributes: attributes(fn) }, () => sql.value(fn, args)),
  };
}
