/**
 * The Supabase driver against the PostgREST double, on each backing database: what goes over the
 * wire, what comes back, how failures are mapped, and how start-up fails for a wrong URL, a wrong
 * key, or a project without the schema.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { json, type SqlFunctions } from '../../src/db/sql-functions.js';
import { createSupabaseClient, SupabaseError, supabaseSqlFunctions } from '../../src/db/supabase.js';
import { CasError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { createRuntime } from '../../src/runtime/create-runtime.js';
import type { CustomRuntime } from '../../src/runtime/custom-runtime.js';
import { installRealtimeSchema } from '../doubles/supabase.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';
import { FAST_RUNTIME_ENV } from '../support/runtime.js';

const start = (env: Record<string, string>) =>
  createRuntime({ config: loadConfig({ ...FAST_RUNTIME_ENV, CAS_WORKERS: '0', ...env }), logger: silentLogger() });

/** An HTTP server that answers every request like a web site would, not like Supabase. */
async function notSupabase(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/html' });
    res.end('<html><body>Not Found</body></html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A PostgREST error body with its own code (PGRSTxxx). */
const pgrstError = (code: string, message: string) => ({ code, message, details: null, hint: null });

async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

describeEachDatabase('Supabase driver over the PostgREST double', (kind) => {
  const backing = kind as 'pglite' | 'postgres';
  let t: TestDatabase;
  let runtime: CustomRuntime;
  let sql: SqlFunctions;
  beforeAll(async () => {
    t = await openTestDatabase('supabase', { backing });
    runtime = await start(t.env!);
    sql = supabaseSqlFunctions(createSupabaseClient({ url: t.supabase!.url, serviceRoleKey: t.supabase!.keys.serviceRole }), t.supabase!.url);
  });
  afterAll(async () => {
    await runtime?.shutdown();
    await t?.close();
  });

  const callsOf = (fn: string) => t.supabase!.postgrest.calls.filter((call) => call.fn === fn);

  it('calls a cas_ function as POST /rest/v1/rpc/<fn> with named JSON arguments and the service role key', async () => {
    const runAt = new Date(Date.now() + 3_600_000);
    const input = { nested: { list: [1, 'two', null], flag: true } };
    const task = await runtime.executeTask({ agentId: 'analyst', action: 'ping', input, runAt, idempotencyKey: 'wire-1' });

    const [call] = callsOf('cas_enqueue_task');
    expect(call).toBeDefined();
    expect(call!.status).toBe(200);
    expect(call!.headers.apikey).toBe(t.supabase!.keys.serviceRole);
    expect(call!.headers.authorization).toBe(`Bearer ${t.supabase!.keys.serviceRole}`);
    expect(call!.headers['content-profile']).toBe('public');
    expect(JSON.parse(call!.body)).toMatchObject({
      p_agent_id: 'analyst',
      p_action: 'ping',
      p_input: input,
      p_run_at: runAt.toISOString(),
      p_idempotency_key: 'wire-1',
    });

    // What the function stored, read back from the database itself.
    const [row] = await t.db.query<{ input: unknown; run_at: Date | string }>(
      'select input, run_at from cas_tasks where id = $1',
      [task.id],
    );
    expect(row!.input).toEqual(input);
    expect(new Date(row!.run_at).getTime()).toBe(runAt.getTime());
    // And the row PostgREST rendered as JSON came back as the same task.
    expect(task).toMatchObject({ agentId: 'analyst', action: 'ping', input, status: 'queued', attempts: 0 });
    expect(task.runAt.getTime()).toBe(runAt.getTime());
    expect(task.createdAt).toBeInstanceOf(Date);
  });

  it('reads set-returning functions as rows and scalar functions as values', async () => {
    const [task] = await sql.rows<{ id: string; seq: number | string }>('cas_enqueue_task', {
      p_agent_id: 'planner',
      p_action: 'ping',
      p_input: json(null),
    });
    expect(task!.id).toMatch(/^[0-9a-f-]{36}$/);
    // A JSON null reaches the function as SQL NULL, as PostgREST passes it.
    const [stored] = await t.db.query<{ input_is_null: boolean }>(
      'select input is null as input_is_null from cas_tasks where id = $1',
      [task!.id],
    );
    expect(stored!.input_is_null).toBe(true);

    expect(await sql.value<number>('cas_count_tasks', { p_agent_id: 'planner' })).toBe(1);
    expect(await sql.value<boolean>('cas_reset_agent_state', { p_agent_id: 'planner' })).toBe(false);
    expect(await sql.rows('cas_get_tasks', { p_ids: [randomUUID()] })).toEqual([]);
    expect(await runtime.countTasks({ agentId: 'planner' })).toBe(1);
  });

  it('maps refused input to the same typed errors as the SQL drivers, from PostgREST error bodies', async () => {
    const missing = randomUUID();
    const notFound = await sql.rows('cas_cancel_task', { p_task_id: missing }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(CasError);
    expect(notFound).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining(missing) });
    expect(callsOf('cas_cancel_task').at(-1)?.status).toBe(400);

    await runtime.updateAgentState('qa', { step: 1 });
    const conflict = await runtime.updateAgentState('qa', { step: 2 }, { expectedVersion: 7 }).catch((e: unknown) => e);
    expect(conflict).toMatchObject({ name: 'CasError', code: 'CONFLICT' });

    const badUuid = await sql.rows('cas_get_tasks', { p_ids: ['not-a-uuid'] }).catch((e: unknown) => e);
    expect(badUuid).toMatchObject({ name: 'CasError', code: 'BAD_USER_INPUT', details: { sqlState: '22P02' } });
    expect(callsOf('cas_get_tasks').at(-1)?.status).toBe(400);
  });

  it('keeps at most maxConcurrentRequests requests in flight; the rest wait their turn', async () => {
    const client = createSupabaseClient({ url: t.supabase!.url, serviceRoleKey: t.supabase!.keys.serviceRole });
    const limited = supabaseSqlFunctions(client, t.supabase!.url, 4);
    const before = t.supabase!.postgrest.maxInFlight;
    const heads = await Promise.all(Array.from({ length: 200 }, () => limited.value<number>('cas_event_head', {})));
    expect(heads).toHaveLength(200);
    // The double's high-water mark counts every client; this burst alone stays within 4.
    if (before <= 4) expect(t.supabase!.postgrest.maxInFlight).toBeLessThanOrEqual(4);
    // Without the limit the same burst overlaps (the PostgreSQL server answers concurrently; PGlite
    // behind the double answers one query at a time, so it cannot show it).
    if (backing === 'postgres') {
      const unlimited = supabaseSqlFunctions(client, t.supabase!.url, 200);
      await Promise.all(Array.from({ length: 200 }, () => unlimited.value<number>('cas_event_head', {})));
      expect(t.supabase!.postgrest.maxInFlight).toBeGreaterThan(4);
    }
  });

  it('answers UNAVAILABLE (retry), not an unexpected error, when the gateway or database is down', async () => {
    const double = t.supabase!.postgrest;
    const before = await runtime.getAgentState('analyst');
    for (const status of [502, 503, 504]) {
      double.failWith = { status, body: { message: 'upstream connect error or disconnect/reset before headers' } };
      try {
        await expect(runtime.updateAgentState('analyst', { step: status })).rejects.toMatchObject({
          code: 'UNAVAILABLE',
          message: expect.stringMatching(/^the database did not answer: .*; retry$/),
        });
      } finally {
        double.failWith = null;
      }
    }
    double.failWith = { status: 503, body: pgrstError('PGRST001', 'Database client error. Retrying the connection.') };
    try {
      await expect(runtime.listAgents()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    } finally {
      double.failWith = null;
    }
    // Nothing was written meanwhile, and the next call goes through.
    expect(await runtime.getAgentState('analyst')).toEqual(before);
    await expect(runtime.updateAgentState('analyst', { step: 'after' })).resolves.toMatchObject({ data: { step: 'after' } });
  });

  it('reports a function the project does not have as not deployed, with the fix', async () => {
    const error = await sql.rows('cas_no_such_function', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SupabaseError);
    expect(error).toMatchObject({ status: 404, code: 'PGRST202' });
    expect((error as Error).message).toMatch(/cas_no_such_function is not in the API of http:\/\/127\.0\.0\.1:\d+: deploy the schema with `supabase db push`/);
  });

  it('reports not-applied migrations in the health check', async () => {
    expect(await runtime.healthCheck()).toMatchObject({ ok: true, mode: 'supabase', migrationsApplied: true });
    const [last] = await t.db.query<{ version: string; name: string; statements: string[] }>(
      'delete from supabase_migrations.schema_migrations where version = (select max(version) from supabase_migrations.schema_migrations) returning version, name, statements',
    );
    try {
      // Health answers are reused for up to a second: the next fresh one sees the missing migration.
      await vi.waitFor(
        async () =>
          expect(await runtime.healthCheck()).toMatchObject({ ok: false, database: 'ok', migrationsApplied: false }),
        { timeout: 10_000, interval: 100 },
      );
      await expect(start(t.env!)).rejects.toThrow(
        new RegExp(`lacks 1 of the migrations in supabase/migrations \\(${last!.version}_${last!.name}\\): run \`supabase db push\``),
      );
    } finally {
      await t.db.query('insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, $2, $3)', [
        last!.version,
        last!.name,
        last!.statements,
      ]);
    }
  });

  it('warns at start when the project was not seeded, or does not broadcast to Realtime', async () => {
    await t.db.exec(`
      delete from cas_agent_status where agent_id = 'security';
      delete from cas_agents where id = 'security';
      drop trigger cas_broadcast_event_notice on cas_agent_events;`);
    const lines: Array<{ level: number; msg: string; missing?: string[] }> = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
          done();
        },
      }),
    );
    const seeded = await createRuntime({
      config: loadConfig({ ...FAST_RUNTIME_ENV, CAS_WORKERS: '0', ...t.env! }),
      logger,
    });
    await seeded.shutdown();
    await installRealtimeSchema(t.db); // puts the trigger back
    expect(lines).toContainEqual(
      expect.objectContaining({ missing: ['security'], msg: expect.stringMatching(/supabase db push --include-seed/) }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: expect.stringMatching(/^this project does not send change notices to Supabase Realtime/) }),
    );
    expect(lines).toHaveLength(2);
  });

  describe('fails at start with a message that says what to fix', () => {
    it('for a key the project does not know', async () => {
      await expect(start({ ...t.env!, SUPABASE_SERVICE_ROLE_KEY: 'not-the-key-'.repeat(4) })).rejects.toThrow(
        /^SUPABASE_SERVICE_ROLE_KEY was refused by http:\/\/127\.0\.0\.1:\d+ \(HTTP 401: Invalid API key\)$/,
      );
    });

    it('for the anon key instead of the service role key', async () => {
      await expect(start({ ...t.env!, SUPABASE_SERVICE_ROLE_KEY: t.supabase!.keys.anon })).rejects.toThrow(
        /may not call cas_applied_migrations: permission denied for function cas_applied_migrations; it must be the project's service_role \(secret\) key, not the anon \(publishable\) key/,
      );
    });

    it('for a URL nothing answers at', async () => {
      const url = await closedPort();
      await expect(start({ ...t.env!, SUPABASE_URL: url })).rejects.toThrow(
        new RegExp(`^cannot reach SUPABASE_URL ${url} \\(.*ECONNREFUSED`),
      );
    });

    it('for a URL that is not a Supabase project', async () => {
      const site = await notSupabase();
      try {
        await expect(start({ ...t.env!, SUPABASE_URL: site.url })).rejects.toThrow(
          /answered HTTP 404 to cas_applied_migrations: <html><body>Not Found<\/body><\/html>; is it the project URL/,
        );
      } finally {
        await site.close();
      }
    });

    describe('for a project without the CAS schema', () => {
      // Opened outside the test's time limit: a database of its own takes a while on a loaded machine.
      let empty: TestDatabase;
      beforeAll(async () => {
        empty = await openTestDatabase('supabase', { backing, empty: true });
      });
      afterAll(() => empty?.close());

      it('names the project and says to deploy the schema', async () => {
        await expect(start(empty.env!)).rejects.toThrow(
          /the CAS schema is not deployed to http:\/\/127\.0\.0\.1:\d+ .*run `supabase db push`/,
        );
      });
    });
  });
});
