-- Whether this database sends the change feed to Supabase Realtime, i.e. whether the Broadcast
-- triggers of 20261126000000_cas_supabase_realtime.sql are installed. They are not when the
-- realtime schema did not exist yet as that migration ran; the service then warns at start.
create or replace function cas_broadcasts_notices() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from pg_catalog.pg_trigger
    where tgname = 'cas_broadcast_event_notice' and tgrelid = 'public.cas_agent_events'::regclass
  )
$$;

revoke execute on function cas_broadcasts_notices() from public;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke execute on function cas_broadcasts_notices() from anon, authenticated;
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant execute on function cas_broadcasts_notices() to service_role;
  end if;
end $$;
