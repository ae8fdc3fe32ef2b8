-- Access: RLS on every table. The service role (the API) bypasses RLS; signed-in users may read.
-- Supabase-only objects (roles, the supabase_realtime publication) are guarded so this file also
-- runs on plain PostgreSQL and PGlite, where the API connects as the tables' owner.

alter table cas_event_sequence enable row level security;
alter table cas_agent_events enable row level security;
alter table cas_agents enable row level security;
alter table cas_agent_status enable row level security;
alter table cas_tasks enable row level security;
alter table cas_agent_config enable row level security;
alter table cas_agent_logs enable row level security;
alter table cas_metrics_timeseries enable row level security;

do $$
declare
  v_table text;
  v_fn regprocedure;
begin
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    foreach v_table in array array['cas_agent_events', 'cas_agents', 'cas_agent_status', 'cas_tasks',
                                   'cas_agent_config', 'cas_agent_logs', 'cas_metrics_timeseries'] loop
      if not exists (select 1 from pg_policies where schemaname = current_schema() and tablename = v_table and policyname = 'authenticated read') then
        execute format('create policy "authenticated read" on %I for select to authenticated using (true)', v_table);
      end if;
    end loop;
  end if;

  if exists (select 1 from pg_roles where rolname = 'service_role') then
    foreach v_table in array array['cas_event_sequence', 'cas_agent_events', 'cas_agents', 'cas_agent_status',
                                   'cas_tasks', 'cas_agent_config', 'cas_agent_logs', 'cas_metrics_timeseries'] loop
      if not exists (select 1 from pg_policies where schemaname = current_schema() and tablename = v_table and policyname = 'service role all') then
        execute format('create policy "service role all" on %I for all to service_role using (true) with check (true)', v_table);
      end if;
    end loop;
  end if;

  -- Writes go through the API only: nobody but the owner and the service role runs cas_ functions.
  for v_fn in
    select p.oid::regprocedure from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = current_schema() and p.proname like 'cas\_%'
  loop
    execute format('revoke execute on function %s from public', v_fn);
    if exists (select 1 from pg_roles where rolname = 'anon') then
      execute format('revoke execute on function %s from anon, authenticated', v_fn);
    end if;
    if exists (select 1 from pg_roles where rolname = 'service_role') then
      execute format('grant execute on function %s to service_role', v_fn);
    end if;
  end loop;

  if exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    foreach v_table in array array['cas_agent_status', 'cas_tasks', 'cas_agent_events'] loop
      if not exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = v_table) then
        execute format('alter publication supabase_realtime add table %I', v_table);
      end if;
    end loop;
  end if;
end $$;
