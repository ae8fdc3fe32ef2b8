/**
 * A PostgREST double: the part of Supabase's Data API the Supabase driver uses, over real HTTP,
 * executing against a real database (PGlite or the PostgreSQL server).
 *
 *   POST /rest/v1/rpc/<fn>   body {"p_a": ...}   → 200 JSON (array for set-returning functions,
 *                                                  object for one row, scalar for scalar functions)
 *
 * Functions are called as PostgREST calls them: the JSON body is turned into typed arguments with
 * json_to_record (so a JSON null is an SQL NULL, a JSON array a Postgres array) and passed by name,
 * and the result is aggregated with json_agg, so values are rendered by Postgres as PostgREST
 * renders them. Errors use PostgREST's body { code, message, details, hint } and its SQLSTATE →
 * HTTP status table (docs.postgrest.org, references/errors). In front of it sits what Supabase's API
 * gateway does with keys: no `apikey` or an unknown one is refused with the gateway's 401 bodies,
 * and an `Authorization: Bearer` token that is not a known key gets PostgREST's PGRST301.
 *
 * Not served (the driver does not use them): table endpoints, GET calls of functions, bulk calls,
 * Prefer options, the OpenAPI root.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Database } from '../../src/db/database.js';

export interface SupabaseKeys {
  serviceRole: string;
  anon: string;
}

export interface PostgrestDoubleOptions {
  db: Database;
  keys: SupabaseKeys;
  /** PostgREST's db-max-rows; Supabase projects default to 1000 (supabase/config.toml [api] max_rows). */
  maxRows?: number;
}

export interface PostgrestErrorBody {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

interface RoutineArg {
  name: string | null;
  type: string;
  mode: string;
}

interface Routine {
  name: string;
  returnsSet: boolean;
  /** 'composite' rows, a 'scalar', or 'void'. */
  returns: 'composite' | 'scalar' | 'void';
  inputs: RoutineArg[];
  /** How many of the trailing inputs have defaults. */
  defaults: number;
}

/** PostgREST's SQLSTATE → HTTP status table. */
export function httpStatusOf(sqlState: string, authenticated: boolean): number {
  const exact: Record<string, number> = {
    '23503': 409,
    '23505': 409,
    '25006': 405,
    '53400': 500,
    P0001: 400,
    '42883': 404,
    '42P01': 404,
    '42P17': 500,
    '42501': authenticated ? 403 : 401,
  };
  if (exact[sqlState] !== undefined) return exact[sqlState]!;
  const byClass: Array<[string, number]> = [
    ['08', 503],
    ['09', 500],
    ['0L', 403],
    ['0P', 403],
    ['25', 500],
    ['28', 403],
    ['2D', 500],
    ['38', 500],
    ['39', 500],
    ['3B', 500],
    ['40', 500],
    ['53', 503],
    ['54', 500],
    ['55', 500],
    ['57', 500],
    ['58', 500],
    ['F0', 500],
    ['HV', 500],
    ['P0', 500],
    ['XX', 500],
  ];
  for (const [prefix, status] of byClass) if (sqlState.startsWith(prefix)) return status;
  return 400;
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

const ROUTINES_SQL = `
  select p.proname as name,
         p.proretset as "returnsSet",
         t.typname as "returnType",
         t.typtype as "returnTypeType",
         p.pronargdefaults as defaults,
         (select coalesce(json_agg(json_build_object(
                    'name', a.name, 'type', format_type(a.type, null), 'mode', coalesce(a.mode::text, 'i'))
                  order by a.ord), '[]'::json)
            from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]), p.proargnames, p.proargmodes)
                 with ordinality as a(type, name, mode, ord)) as args
  from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
  join pg_type t on t.oid = p.prorettype
  where n.nspname = 'public' and p.proname = $1 and p.prokind = 'f'`;

interface RoutineRow {
  name: string;
  returnsSet: boolean;
  returnType: string;
  returnTypeType: string;
  defaults: number;
  args: RoutineArg[] | string;
}

function toRoutine(row: RoutineRow): Routine {
  const args = (typeof row.args === 'string' ? JSON.parse(row.args) : row.args) as RoutineArg[];
  const inputs = args.filter((a) => ['i', 'b', 'v'].includes(a.mode));
  const hasOutputs = args.some((a) => ['o', 'b', 't'].includes(a.mode));
  const composite = row.returnTypeType === 'c' || (row.returnType === 'record' && hasOutputs);
  return {
    name: row.name,
    returnsSet: row.returnsSet,
    returns: row.returnType === 'void' ? 'void' : composite ? 'composite' : 'scalar',
    inputs,
    defaults: Number(row.defaults),
  };
}

/** PostgREST picks the overload whose parameter names cover the body's keys, all required ones given. */
function pickRoutine(candidates: Routine[], keys: string[]): Routine | undefined {
  return candidates.find((routine) => {
    const names = routine.inputs.map((input) => input.name);
    const required = routine.inputs.slice(0, routine.inputs.length - routine.defaults).map((i) => i.name);
    return keys.every((key) => names.includes(key)) && required.every((name) => keys.includes(name!));
  });
}

/** The SQL PostgREST runs for a call with key parameters (QueryBuilder.callPlanToQuery, simplified). */
function callSql(routine: Routine, keys: string[], maxRows: number): string {
  const params = routine.inputs.filter((input) => keys.includes(input.name!));
  const fn = `public.${quoteIdent(routine.name)}`;
  const named = params.map((p) => `${quoteIdent(p.name!)} := pgrst_body.${quoteIdent(p.name!)}`).join(', ');
  const scalar = routine.returns !== 'composite';
  const call = scalar ? `(select ${fn}(${named}) as pgrst_scalar) pgrst_call` : `${fn}(${named}) pgrst_call`;
  const from =
    params.length === 0
      ? `from ${call}`
      : `from (select $1::json as json_data) pgrst_payload,
         lateral (select ${params.map((p) => quoteIdent(p.name!)).join(', ')}
                  from json_to_record(pgrst_payload.json_data)
                  as _(${params.map((p) => `${quoteIdent(p.name!)} ${p.type}`).join(', ')})) pgrst_body,
         lateral ${call}`;
  const source = `select ${scalar ? 'pgrst_call.pgrst_scalar' : 'pgrst_call.*'} ${from}`;
  if (routine.returnsSet) {
    const agg = scalar ? 'json_agg(_postgrest_t.pgrst_scalar)' : 'json_agg(_postgrest_t)';
    return `select coalesce(${agg}, '[]')::text as body, count(*)::int as n
            from (${source} limit ${maxRows}) _postgrest_t`;
  }
  const single = scalar ? 'json_agg(_postgrest_t.pgrst_scalar)->0' : 'json_agg(_postgrest_t)->0';
  return `select coalesce((${single})::text, 'null') as body, count(*)::int as n from (${source}) _postgrest_t`;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(text);
}

const pgrstError = (
  code: string,
  message: string,
  details: string | null = null,
  hint: string | null = null,
) => ({
  code,
  details,
  hint,
  message,
});

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface PostgrestDouble {
  /** Handles /rest/v1/...; answers false for other paths. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** Every call, in order: function name, HTTP status, request headers and body. */
  readonly calls: Array<{ fn: string; status: number; headers: IncomingMessage['headers']; body: string }>;
  /** While set, every request is answered with this status and body (an outage, a gateway error). */
  failWith: { status: number; body: unknown } | null;
  /** The most requests that were being handled at once. */
  readonly maxInFlight: number;
}

export function postgrestDouble(options: PostgrestDoubleOptions): PostgrestDouble {
  const { db, keys } = options;
  const maxRows = options.maxRows ?? 1000;
  const routines = new Map<string, Promise<Routine[]>>();
  const routinesOf = (name: string) => {
    let cached = routines.get(name);
    if (!cached) {
      cached = db.query<RoutineRow>(ROUTINES_SQL, [name]).then((rows) => rows.map(toRoutine));
      routines.set(name, cached);
      cached.catch(() => routines.delete(name));
    }
    return cached;
  };

  let inFlight = 0;
  let maxInFlight = 0;
  const double: PostgrestDouble = {
    calls: [],
    failWith: null,
    get maxInFlight() {
      return maxInFlight;
    },
    async handle(req, res) {
      const url = new URL(req.url ?? '/', 'http://double');
      if (!url.pathname.startsWith('/rest/v1/')) return false;
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      res.once('close', () => (inFlight -= 1));
      if (double.failWith) {
        send(res, double.failWith.status, double.failWith.body);
        return true;
      }

      // The API gateway: a known apikey is required.
      const apikey = req.headers.apikey ?? url.searchParams.get('apikey');
      if (!apikey) {
        send(res, 401, {
          message: 'No API key found in request',
          hint: 'No `apikey` request header or url param was found.',
        });
        return true;
      }
      if (apikey !== keys.serviceRole && apikey !== keys.anon) {
        send(res, 401, {
          message: 'Invalid API key',
          hint: 'Double check your Supabase `anon` or `service_role` API key.',
        });
        return true;
      }
      // PostgREST: the bearer token picks the role; without one, the anonymous role.
      const bearer = /^Bearer (.+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
      if (bearer !== undefined && bearer !== keys.serviceRole && bearer !== keys.anon) {
        send(res, 401, pgrstError('PGRST301', 'JWSError JWSInvalidSignature'), {
          'www-authenticate':
            'Bearer error="invalid_token", error_description="JWSError JWSInvalidSignature"',
        });
        return true;
      }
      const role = bearer === keys.serviceRole ? 'service_role' : 'anon';

      const match = /^\/rest\/v1\/rpc\/([^/]+)$/.exec(url.pathname);
      if (!match) {
        const table = url.pathname.slice('/rest/v1/'.length);
        send(
          res,
          404,
          pgrstError('PGRST205', `Could not find the table 'public.${table}' in the schema cache`),
        );
        return true;
      }
      const fn = decodeURIComponent(match[1]!);
      const text = await readBody(req);
      const status = await call(fn, req, text, res, role);
      double.calls.push({ fn, status, headers: req.headers, body: text });
      return true;
    },
  };

  async function call(
    fn: string,
    req: IncomingMessage,
    text: string,
    res: ServerResponse,
    role: string,
  ): Promise<number> {
    const reply = (status: number, body: unknown, headers?: Record<string, string>) => {
      send(res, status, body, headers);
      return status;
    };
    if (req.method !== 'POST') {
      return reply(405, pgrstError('PGRST101', 'Only GET and POST verbs are allowed for functions'));
    }
    const profile = req.headers['content-profile'];
    if (profile !== undefined && profile !== 'public') {
      return reply(
        406,
        pgrstError(
          'PGRST106',
          `Invalid schema: ${String(profile)}`,
          null,
          'Only the following schemas are exposed: public',
        ),
      );
    }
    const contentType = String(req.headers['content-type'] ?? 'application/json');
    if (!contentType.startsWith('application/json')) {
      return reply(
        415,
        pgrstError('PGRST107', `The request's Content-Type '${contentType}' is not supported`),
      );
    }
    let body: unknown;
    try {
      body = text.trim() === '' ? {} : JSON.parse(text);
    } catch {
      return reply(400, pgrstError('PGRST102', 'Empty or invalid json'));
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return reply(
        400,
        pgrstError('PGRST102', 'The double serves calls with one JSON object of named arguments'),
      );
    }
    const keys = Object.keys(body);
    const routine = pickRoutine(await routinesOf(fn), keys);
    if (!routine) {
      const listed = [...keys].sort().join(', ');
      return reply(
        404,
        pgrstError(
          'PGRST202',
          `Could not find the function public.${fn}(${listed}) in the schema cache`,
          `Searched for the function public.${fn} with parameters ${listed} or with a single unnamed ` +
            'json/jsonb parameter, but no matches were found in the schema cache.',
        ),
      );
    }
    // cas_ functions are executable by the service role only (supabase/migrations revokes the rest).
    if (role !== 'service_role') {
      return reply(401, pgrstError('42501', `permission denied for function ${fn}`));
    }
    let rows: Array<{ body: string; n: number }>;
    try {
      const sql = callSql(routine, keys, maxRows);
      rows = await db.query(sql, keys.length > 0 ? [JSON.stringify(body)] : []);
    } catch (error) {
      const e = error as { code?: string; message?: string; detail?: string; hint?: string };
      if (typeof e.code !== 'string') throw error;
      return reply(
        httpStatusOf(e.code, true),
        pgrstError(e.code, e.message ?? '', e.detail ?? null, e.hint ?? null),
      );
    }
    const [row] = rows;
    if (routine.returns === 'void') {
      res.writeHead(204);
      res.end();
      return 204;
    }
    const n = row?.n ?? 0;
    const range = routine.returnsSet ? (n > 0 ? `0-${n - 1}/*` : '*/0') : '0-0/*';
    return reply(200, row?.body ?? 'null', { 'content-range': range });
  }
  return double;
}
