-- Access model (docs/security.md): API keys, task reads filtered by creator, and row-level security
-- that lets a signed-in Supabase user read only their own tasks, their events and their logs.
-- Supabase-only objects (roles, auth.uid(), the realtime publication and schema) are guarded, so
-- this file also runs on plain PostgreSQL and PGlite.

-- API keys for services and scripts. Only the SHA-256 of a key is stored: keys are 32 random bytes,
-- so a fast hash is enough (nothing to brute-force), and looking a key up by its hash compares
-- secrets without timing differences in application code.
create table if not exists cas_api_keys (
  id uuid primary key default gen_random_uuid(),
  name text not null check (char_length(name) between 1 and 100),
  role text not null check (role in ('viewer', 'operator', 'admin')),
  key_hash text not null unique check (key_hash ~ '^[0-9a-f]{64}$'),
  created_by text,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
comment on table cas_api_keys is 'API keys (Authorization: Bearer cas_...). The secret is shown once; only its SHA-256 is kept.';
comment on column cas_api_keys.last_used_at is 'Updated at most once a minute per key (cas_touch_api_key), not on every request.';
comment on column cas_api_keys.created_by is 'The user id (JWT sub, or apiKey:<id>) of the admin who created the key.';

alter table cas_api_keys enable row level security;

create or replace function cas_create_api_key(
  p_name text,
  p_role text,
  p_key_hash text,
  p_user_id text default null
) returns setof cas_api_keys
language sql set search_path = public, pg_temp as $$
  insert into cas_api_keys (name, role, key_hash, created_by)
  values (p_name, p_role, p_key_hash, p_user_id)
  returning *
$$;

-- Revoking is idempotent: a revoked key keeps its first revocation time.
create or replace function cas_revoke_api_key(p_id uuid) returns setof cas_api_keys
language plpgsql set search_path = public, pg_temp as $$
declare
  v_key cas_api_keys;
begin
  update cas_api_keys set revoked_at = coalesce(revoked_at, now()) where id = p_id returning * into v_key;
  if v_key.id is null then
    perform cas_raise_not_found('API key', p_id::text);
  end if;
  return next v_key;
end $$;

create or replace function cas_list_api_keys() returns setof cas_api_keys
language sql stable set search_path = public, pg_temp as $$
  select * from cas_api_keys order by created_at desc, id
$$;

-- The live (not revoked) key with this hash, if any.
create or replace function cas_find_api_key(p_key_hash text) returns setof cas_api_keys
language sql stable set search_path = public, pg_temp as $$
  select * from cas_api_keys where key_hash = p_key_hash and revoked_at is null
$$;

-- Records use; skips the write when the key was marked used within p_min_interval_ms, so many
-- processes touching one key do not each write.
create or replace function cas_touch_api_key(p_id uuid, p_min_interval_ms int default 60000) returns void
language sql set search_path = public, pg_temp as $$
  update cas_api_keys set last_used_at = now()
  where id = p_id
    and (last_used_at is null or last_used_at < now() - make_interval(secs => p_min_interval_ms / 1000.0))
$$;

-- Task reads of one creator (viewers and operators without the tasks:all grant). New functions
-- rather than new parameters, so the unfiltered list and count stay as they are.
create index if not exists cas_tasks_user_seq_idx on cas_tasks (user_id, seq desc);

create or replace function cas_list_tasks_created_by(
  p_user_id text,
  p_agent_id text default null,
  p_statuses text[] default null,
  p_before_seq bigint default null,
  p_limit int default 50
) returns setof cas_tasks
language sql stable set search_path = public, pg_temp as $$
  select * from cas_tasks t
  where t.user_id = p_user_id
    and (p_agent_id is null or t.agent_id = p_agent_id)
    and (p_statuses is null or t.status = any (p_statuses))
    and (p_before_seq is null or t.seq < p_before_seq)
  order by t.seq desc
  limit greatest(p_limit, 0)
$$;

create or replace function cas_count_tasks_created_by(
  p_user_id text,
  p_agent_id text default null,
  p_statuses text[] default null
) returns bigint
language sql stable set search_path = public, pg_temp as $$
  select count(*) from cas_tasks t
  where t.user_id = p_user_id
    and (p_agent_id is null or t.agent_id = p_agent_id)
    and (p_statuses is null or t.status = any (p_statuses))
$$;

create or replace function cas_recent_tasks_created_by(p_agent_ids text[], p_user_id text, p_limit int default 5)
returns setof cas_tasks
language sql stable set search_path = public, pg_temp as $$
  select t.* from unnest(p_agent_ids) as a(agent_id)
  cross join lateral (
    select * from cas_tasks t
    where t.agent_id = a.agent_id and t.user_id = p_user_id
    order by t.seq desc limit greatest(p_limit, 0)
  ) t
$$;

do $$
declare
  v_fn text;
  v_table text;
begin
  -- Only the service calls these, as with every cas_ function (20261125000400_cas_security.sql).
  foreach v_fn in array array[
    'cas_create_api_key(text, text, text, text)', 'cas_revoke_api_key(uuid)', 'cas_list_api_keys()',
    'cas_find_api_key(text)', 'cas_touch_api_key(uuid, int)',
    'cas_list_tasks_created_by(text, text, text[], bigint, int)',
    'cas_count_tasks_created_by(text, text, text[])', 'cas_recent_tasks_created_by(text[], text, int)'
  ] loop
    execute format('revoke execute on function %s from public', v_fn);
    if exists (select 1 from pg_roles where rolname = 'anon') then
      execute format('revoke execute on function %s from anon, authenticated', v_fn);
    end if;
    if exists (select 1 from pg_roles where rolname = 'service_role') then
      execute format('grant execute on function %s to service_role', v_fn);
    end if;
  end loop;

  if exists (select 1 from pg_roles where rolname = 'service_role')
     and not exists (select 1 from pg_policies where schemaname = current_schema() and tablename = 'cas_api_keys' and policyname = 'service role all') then
    create policy "service role all" on cas_api_keys for all to service_role using (true) with check (true);
  end if;

  -- Signed-in users read their own tasks, and the events and logs of those tasks; nothing else.
  -- (Before: every signed-in user of the project could read every row.)
  foreach v_table in array array['cas_agent_events', 'cas_agents', 'cas_agent_status', 'cas_tasks',
                                 'cas_agent_config', 'cas_agent_logs', 'cas_metrics_timeseries'] loop
    execute format('drop policy if exists "authenticated read" on %I', v_table);
  end loop;

  if exists (select 1 from pg_roles where rolname = 'authenticated')
     and to_regprocedure('auth.uid()') is not null then
    drop policy if exists "authenticated reads own tasks" on cas_tasks;
    create policy "authenticated reads own tasks" on cas_tasks for select to authenticated
      using (user_id = (select auth.uid())::text);

    drop policy if exists "authenticated reads events of own tasks" on cas_agent_events;
    create policy "authenticated reads events of own tasks" on cas_agent_events for select to authenticated
      using (task_id in (select t.id from cas_tasks t where t.user_id = (select auth.uid())::text));

    drop policy if exists "authenticated reads logs of own tasks" on cas_agent_logs;
    create policy "authenticated reads logs of own tasks" on cas_agent_logs for select to authenticated
      using (task_id in (select t.id from cas_tasks t where t.user_id = (select auth.uid())::text));
  end if;

  -- The service streams through Realtime Broadcast ('cas:feed'), not postgres_changes: the tables
  -- leave the publication. The doorbells name every task; only the service (which bypasses RLS)
  -- receives them now. Frontends subscribe through the API's GraphQL subscriptions.
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    foreach v_table in array array['cas_agent_status', 'cas_tasks', 'cas_agent_events'] loop
      if exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = v_table) then
        execute format('alter publication supabase_realtime drop table %I', v_table);
      end if;
    end loop;
  end if;
  if to_regclass('realtime.messages') is not null then
    drop policy if exists "cas feed: authenticated can receive" on realtime.messages;
  end if;
end $$;
