/**
 * The Supabase-only parts of supabase/migrations: installed where Supabase's realtime schema and
 * roles exist (here: the realtime stand-in and the three API roles, created on an empty PGlite,
 * whose roles are its own), absent on plain PostgreSQL and PGlite, where the files still run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/db/migrate.js';
import { REALTIME_SCHEMA_SQL } from '../doubles/realtime-schema.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';

const broadcastTriggers = (t: TestDatabase) =>
  t.db.query<{ name: string; table: string }>(
    `select tgname as name, tgrelid::regclass::text as "table" from pg_trigger
     where tgname like 'cas\\_broadcast\\_%' order by tgname`,
  );

describeEachDatabase('migrations without Supabase', (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase(kind);
  });
  afterAll(() => t?.close());

  it('install no Broadcast triggers and no realtime objects, and still provide the schema probe', async () => {
    expect(await broadcastTriggers(t)).toEqual([]);
    const [realtime] = await t.db.query<{ exists: boolean }>(
      `select exists (select 1 from pg_namespace where nspname = 'realtime') as exists`,
    );
    expect(realtime!.exists).toBe(false);
    const versions = await t.db.query<{ cas_applied_migrations: string }>('select * from cas_applied_migrations()');
    expect(versions.map((row) => row.cas_applied_migrations)).toContain('20261126000000');
    const [probe] = await t.db.query<{ broadcasts: boolean }>('select cas_broadcasts_notices() as broadcasts');
    expect(probe!.broadcasts).toBe(false);
  });
});

describe('migrations on a database with Supabase roles and the realtime schema [pglite]', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase('pglite', { empty: true });
    await t.db.exec(`
      create role anon nologin;
      create role authenticated nologin;
      create role service_role nologin bypassrls;
      ${REALTIME_SCHEMA_SQL}
      -- As on Supabase: realtime.send is not the API roles' to call.
      revoke execute on function realtime.send(jsonb, text, text, boolean) from public;
    `);
    await migrate(t.db);
  });
  afterAll(() => t?.close());

  it('install the Broadcast triggers on the event log and the log table', async () => {
    expect(await broadcastTriggers(t)).toEqual([
      { name: 'cas_broadcast_event_notice', table: 'cas_agent_events' },
      { name: 'cas_broadcast_log_notice', table: 'cas_agent_logs' },
    ]);
    const [probe] = await t.db.query<{ broadcasts: boolean }>('select cas_broadcasts_notices() as broadcasts');
    expect(probe!.broadcasts).toBe(true);
  });

  it('report a per-row event trigger (an older install), and put the per-statement one back with cas_install_realtime_broadcast', async () => {
    const broadcasts = async () =>
      (await t.db.query<{ on: boolean }>('select cas_broadcasts_notices() as on'))[0]!.on;
    // Any trigger function will do (nothing is inserted here): the check looks at how it fires.
    await t.db.exec(`
      drop trigger cas_broadcast_event_notice on cas_agent_events;
      create trigger cas_broadcast_event_notice after insert on cas_agent_events
        for each row execute function cas_broadcast_log_notice();
    `);
    expect(await broadcasts()).toBe(false);
    const [installed] = await t.db.query<{ done: boolean }>('select cas_install_realtime_broadcast() as done');
    expect(installed!.done).toBe(true);
    expect(await broadcasts()).toBe(true);
    expect(await broadcastTriggers(t)).toHaveLength(2);
  });

  it('let nobody but the service role (which bypasses RLS) receive cas:feed: the doorbells name tasks', async () => {
    const policies = await t.db.query<{ policyname: string }>(
      `select policyname from pg_policies where schemaname = 'realtime' and tablename = 'messages'`,
    );
    expect(policies).toEqual([]);
  });

  it('let only the service role call cas_ functions, the schema probe included', async () => {
    const rows = await t.db.query<{ fn: string; anon: boolean; authenticated: boolean; service: boolean }>(`
      select p.oid::regprocedure::text as fn,
             has_function_privilege('anon', p.oid, 'execute') as anon,
             has_function_privilege('authenticated', p.oid, 'execute') as authenticated,
             has_function_privilege('service_role', p.oid, 'execute') as service
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public'
        and p.proname in ('cas_applied_migrations', 'cas_broadcasts_notices', 'cas_list_events', 'cas_enqueue_task',
                          'cas_find_api_key', 'cas_list_tasks_created_by')
      order by 1`);
    expect(rows).toHaveLength(6);
    for (const row of rows) expect(row).toMatchObject({ anon: false, authenticated: false, service: true });
  });

  it('broadcast a write made as the service role, though it may not call realtime.send itself', async () => {
    await t.db.exec(`
      grant usage on schema public to service_role;
      grant all on all tables in schema public to service_role;
      grant all on all sequences in schema public to service_role;
    `);
    let last: { seq: number }[] = [];
    const [sent] = await t.db.transaction(async (tx) => {
      await tx.query('set local role service_role');
      await tx.query(`select cas_append_event('agent_registered', 'marketer', null, '{}'::jsonb, null)`);
      await tx.query('reset role');
      last = await tx.query<{ seq: number }>(`select max(seq)::float8 as seq from cas_agent_events`);
      return tx.query<{ topic: string; event: string; private: boolean; payload: Record<string, unknown> }>(
        `select topic, event, private, payload from realtime.messages order by inserted_at desc limit 1`,
      );
    });
    expect(sent).toMatchObject({
      topic: 'cas:feed',
      event: 'notice',
      private: true,
      payload: { kind: 'events', lastSeq: last[0]!.seq, types: ['agent_registered'], cancelledTaskIds: [] },
    });
  });
});
