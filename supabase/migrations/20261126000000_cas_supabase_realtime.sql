-- Supabase mode: a schema probe for the service's start-up check, and the change feed as Supabase
-- Realtime Broadcast from Database.
--
-- The same doorbells cas_feed carries over NOTIFY ({kind: 'event', seq, type, agentId, taskId} for
-- each event row, {kind: 'log', lastId} for each batch of log entries) are also sent with
-- realtime.send(payload, 'notice', 'cas:feed', private => true), so a service that reaches the
-- database only over HTTP (supabase-js) hears them on the private channel 'cas:feed'.
--
-- This file runs on plain PostgreSQL and PGlite too: the Realtime parts are installed only where
-- Supabase's realtime schema exists. If Realtime was added to a database after this migration ran,
-- run this file again (it is idempotent).

-- Applied migration versions, for the start-up check in Supabase mode: PostgREST does not expose
-- the supabase_migrations schema, and the service role cannot read it, hence security definer.
create or replace function cas_applied_migrations() returns setof text
language plpgsql stable security definer set search_path = '' as $$
begin
  if to_regclass('supabase_migrations.schema_migrations') is null then
    return;
  end if;
  return query execute 'select version::text from supabase_migrations.schema_migrations order by version';
end $$;

-- Trigger functions: one broadcast per event row, one per statement that inserts log entries.
-- Security definer because realtime.send is not granted to the roles that write (service_role);
-- realtime.send itself turns its own failures into warnings, so a broadcast never fails a write.
create or replace function cas_broadcast_event_notice() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform realtime.send(
    jsonb_build_object(
      'kind', 'event', 'seq', new.seq, 'type', new.event_type, 'agentId', new.agent_id, 'taskId', new.task_id
    ),
    'notice', 'cas:feed', true
  );
  return null;
end $$;

create or replace function cas_broadcast_log_notice() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_last_id bigint;
begin
  select max(id) into v_last_id from new_entries;
  if v_last_id is not null then
    perform realtime.send(jsonb_build_object('kind', 'log', 'lastId', v_last_id), 'notice', 'cas:feed', true);
  end if;
  return null;
end $$;

revoke execute on function cas_applied_migrations() from public;
revoke execute on function cas_broadcast_event_notice() from public;
revoke execute on function cas_broadcast_log_notice() from public;

do $$
begin
  -- Supabase grants new functions to anon and authenticated by default; only the service may call.
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke execute on function cas_applied_migrations() from anon, authenticated;
    revoke execute on function cas_broadcast_event_notice() from anon, authenticated;
    revoke execute on function cas_broadcast_log_notice() from anon, authenticated;
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant execute on function cas_applied_migrations() to service_role;
  end if;

  -- Supabase only: Broadcast from Database.
  if to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null then
    drop trigger if exists cas_broadcast_event_notice on cas_agent_events;
    create trigger cas_broadcast_event_notice
      after insert on cas_agent_events
      for each row execute function cas_broadcast_event_notice();

    drop trigger if exists cas_broadcast_log_notice on cas_agent_logs;
    create trigger cas_broadcast_log_notice
      after insert on cas_agent_logs
      referencing new table as new_entries
      for each statement execute function cas_broadcast_log_notice();
  end if;

  -- Supabase only: 'cas:feed' is a private channel. The service role bypasses RLS; this policy lets
  -- signed-in users (an admin UI) receive the doorbells too. They carry ids only, no row data.
  if to_regclass('realtime.messages') is not null
     and to_regprocedure('realtime.topic()') is not null
     and exists (select 1 from pg_roles where rolname = 'authenticated')
     and not exists (
       select 1 from pg_policies
       where schemaname = 'realtime' and tablename = 'messages' and policyname = 'cas feed: authenticated can receive'
     ) then
    create policy "cas feed: authenticated can receive" on realtime.messages
      for select to authenticated
      using ((select realtime.topic()) = 'cas:feed' and extension = 'broadcast');
  end if;
end $$;
