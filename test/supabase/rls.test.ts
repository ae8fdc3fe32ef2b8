/**
 * Row-level security as Supabase applies it, on the real PostgreSQL server: the migrations run on a
 * database with Supabase's API roles, auth.uid() and the supabase_realtime publication, then each
 * query runs as PostgREST runs it (`set role`, `request.jwt.claims`). anon reads nothing; a signed-in
 * user reads their own tasks, those tasks' events and logs, and nothing else; the service role all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/db/migrate.js';
import { openTestDatabase, testDatabaseKinds, type TestDatabase } from '../support/databases.js';

const ALICE = '00000000-0000-4000-8000-00000000a11c';
const BOB = '00000000-0000-4000-8000-000000000b0b';

const TABLES = [
  'cas_tasks',
  'cas_agent_events',
  'cas_agent_logs',
  'cas_agents',
  'cas_agent_status',
  'cas_agent_config',
  'cas_metrics_timeseries',
  'cas_event_sequence',
  'cas_api_keys',
] as const;

/** Supabase's API roles and auth.uid(), as its platform defines them (roles are per server). */
const SUPABASE_ROLES_AND_AUTH = `
  do $$
  begin
    if not exists (select 1 from pg_roles where rolname = 'anon') then create role anon nologin; end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticated') then create role authenticated nologin; end if;
    if not exists (select 1 from pg_roles where rolname = 'service_role') then create role service_role nologin bypassrls; end if;
  exception when duplicate_object or unique_violation then
    null; -- another test run created them at the same moment
  end $$;
  create schema if not exists auth;
  create or replace function auth.uid() returns uuid language sql stable as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
  $fn$;
  grant usage on schema auth to anon, authenticated, service_role;
  create publication supabase_realtime;
`;

/** Supabase grants the API roles every table of public; RLS is what limits them. */
const SUPABASE_TABLE_GRANTS = `
  grant usage on schema public to anon, authenticated, service_role;
  grant all on all tables in schema public to anon, authenticated, service_role;
  grant all on all sequences in schema public to anon, authenticated, service_role;
`;

const describeOnServer = testDatabaseKinds.includes('postgres') ? describe : describe.skip;

describeOnServer('row-level security for Supabase roles [postgres]', () => {
  let t: TestDatabase;
  const tasks: Record<string, string> = {};

  beforeAll(async () => {
    t = await openTestDatabase('postgres', { empty: true });
    await t.db.exec(SUPABASE_ROLES_AND_AUTH);
    await migrate(t.db);
    await t.db.exec(SUPABASE_TABLE_GRANTS);
    for (const [name, user] of [
      ['alice', ALICE],
      ['bob', BOB],
    ] as const) {
      const [task] = await t.db.query<{ id: string }>(
        `select id from cas_enqueue_task(p_agent_id => 'analyst', p_action => 'ping', p_user_id => $1)`,
        [user],
      );
      tasks[name] = task!.id;
      await t.db.query(`select cas_write_logs($1::jsonb)`, [
        JSON.stringify([{ agentId: 'analyst', taskId: task!.id, level: 'info', message: `${name}'s log` }]),
      ]);
    }
    await t.db.query(`select cas_write_logs($1::jsonb)`, [
      JSON.stringify([{ agentId: 'analyst', level: 'info', message: 'agent-level log' }]),
    ]);
    await t.db.query(`select cas_update_agent_state(p_agent_id => 'analyst', p_data => '{"secret": 1}'::jsonb)`);
    await t.db.query(
      `select cas_create_api_key(p_name => 'k', p_role => 'admin', p_key_hash => repeat('a', 64))`,
    );
  });
  afterAll(() => t?.close());

  /** Runs `sql` as PostgREST would for this role and (for authenticated) this user. */
  const as = <Row>(role: 'anon' | 'authenticated' | 'service_role', sub: string | null, sql: string) =>
    t.db.transaction(async (tx) => {
      await tx.query(`set local role ${role}`);
      const claims = JSON.stringify(sub ? { sub, role } : { role });
      await tx.query(`select set_config('request.jwt.claims', $1, true)`, [claims]);
      return tx.query<Row>(sql);
    });

  const visible = async (role: 'anon' | 'authenticated' | 'service_role', sub: string | null) => {
    const counts: Record<string, number> = {};
    for (const table of TABLES) {
      const [row] = await as<{ n: number }>(role, sub, `select count(*)::int as n from ${table}`);
      counts[table] = row!.n;
    }
    return counts;
  };

  it('lets anon read nothing', async () => {
    expect(Object.values(await visible('anon', null))).toEqual(TABLES.map(() => 0));
  });

  it("lets each signed-in user read only their own tasks, those tasks' events and logs", async () => {
    for (const [name, user] of [
      ['alice', ALICE],
      ['bob', BOB],
    ] as const) {
      expect(await visible('authenticated', user)).toEqual({
        cas_tasks: 1,
        cas_agent_events: 1, // task_queued
        cas_agent_logs: 1,
        cas_agents: 0,
        cas_agent_status: 0,
        cas_agent_config: 0,
        cas_metrics_timeseries: 0,
        cas_event_sequence: 0,
        cas_api_keys: 0,
      });
      const [own] = await as<{ id: string }>('authenticated', user, 'select id from cas_tasks');
      expect(own!.id).toBe(tasks[name]);
      const logs = await as<{ message: string }>('authenticated', user, 'select message from cas_agent_logs');
      expect(logs).toEqual([{ message: `${name}'s log` }]);
    }
  });

  it('lets a signed-in user neither write rows nor call cas_ functions', async () => {
    await expect(
      as('authenticated', ALICE, `insert into cas_tasks (agent_id, action, user_id) values ('analyst', 'ping', '${ALICE}')`),
    ).rejects.toThrow(/row-level security/);
    await expect(as('authenticated', ALICE, `update cas_tasks set status = 'cancelled'`)).resolves.toEqual([]);
    const [task] = await t.db.query<{ status: string }>('select status from cas_tasks where id = $1', [tasks.alice!]);
    expect(task!.status).toBe('queued');
    await expect(as('authenticated', ALICE, 'select * from cas_list_tasks()')).rejects.toThrow(/permission denied/);
  });

  it('lets the service role read everything', async () => {
    const counts = await visible('service_role', null);
    expect(counts).toMatchObject({ cas_tasks: 2, cas_agent_logs: 3, cas_api_keys: 1, cas_agents: 8 });
  });

  it('takes the tables out of the supabase_realtime publication (the service streams by Broadcast)', async () => {
    const published = await t.db.query<{ tablename: string }>(
      `select tablename from pg_publication_tables where pubname = 'supabase_realtime'`,
    );
    expect(published).toEqual([]);
  });
});
