-- One doorbell per append of events, not one per event.
--
-- cas_append_events rang cas_feed once per event row: a worker's batch of ten completions and ten
-- claims sent twenty notifications, each queued at commit and delivered to every listening process
-- (every API and worker process), which parsed each. What listeners do with a notice is read the log
-- from their position (LogTail), or look at its type (a worker's claim loop wakes for task_queued,
-- task_retry_scheduled and task_resumed) and, for task_cancel_requested, at its task (the worker
-- running it stops it). So one notice per append carries what they use:
--
--   {"kind": "events", "lastSeq": <the append's last seq>, "types": [<its distinct event types>],
--    "cancelledTaskIds": [<the tasks of its task_cancel_requested events>]}
--
-- A notification holds at most 8,000 bytes: an append with more than 100 cancellations (a workflow
-- cancelling its descendants) sends the rest in further notices of 100 (a uuid in JSON is 38
-- bytes). Supabase's Broadcast from Database sends the same notices, one per inserting statement.
--
-- Measured with one worker process draining no-op tasks on the PostgreSQL server (alternating
-- rounds against the previous build): alone, 1.013x tasks/s (noise level); with five more
-- connections listening and parsing, as the API processes of a scale-out do, 1.03-1.07x.

create or replace function cas_append_events(
  p_types text[],
  p_agent_ids text[],
  p_task_ids uuid[],
  p_payloads jsonb[],
  p_user_ids text[] default null
) returns setof cas_agent_events
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_count int := coalesce(cardinality(p_types), 0);
  v_last bigint;
begin
  if v_count = 0 then
    return;
  end if;
  update cas_event_sequence set last_seq = last_seq + v_count where id returning last_seq into v_last;
  return query
    insert into cas_agent_events (seq, event_type, agent_id, task_id, user_id, payload)
    select v_last - v_count + e.n, e.type, e.agent_id, e.task_id, p_user_ids[e.n], coalesce(e.payload, '{}'::jsonb)
    from unnest(p_types, p_agent_ids, p_task_ids, p_payloads) with ordinality as e(type, agent_id, task_id, payload, n)
    order by e.n
    returning *;
  perform pg_notify('cas_feed', n::text) from cas_feed_notices(v_last, p_types, p_task_ids) as n;
end $$;

-- The doorbells of an append whose last event is p_last_seq (see the top of this file).
create or replace function cas_feed_notices(p_last_seq bigint, p_types text[], p_task_ids uuid[])
returns setof jsonb
language plpgsql
immutable
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  -- Cancelled tasks per notice: 100 uuids keep a notice under the 8,000 bytes NOTIFY takes.
  c_cancelled_per_notice constant int := 100;
  v_types text[];
  v_cancelled uuid[];
  v_from int;
begin
  -- In the append's order: without its own ORDER BY, an aggregate sees its rows in whatever order
  -- the plan gives (PostgreSQL 16 and later sort them for the distinct one).
  select array_agg(distinct e.type), coalesce(array_agg(e.task_id order by e.n) filter (
           where e.type = 'task_cancel_requested' and e.task_id is not null), '{}')
    into v_types, v_cancelled
    from unnest(p_types, p_task_ids) with ordinality as e(type, task_id, n);
  return next jsonb_build_object('kind', 'events', 'lastSeq', p_last_seq, 'types', v_types,
                                 'cancelledTaskIds', v_cancelled[1:c_cancelled_per_notice]);
  v_from := c_cancelled_per_notice + 1;
  while v_from <= cardinality(v_cancelled) loop
    return next jsonb_build_object('kind', 'events', 'lastSeq', p_last_seq,
                                   'types', array['task_cancel_requested'],
                                   'cancelledTaskIds', v_cancelled[v_from:v_from + c_cancelled_per_notice - 1]);
    v_from := v_from + c_cancelled_per_notice;
  end loop;
end $$;

-- Supabase only: Broadcast from Database sends the same notices, once per inserting statement. The
-- trigger and its function keep their names (20261126000000_cas_supabase_realtime.sql).
create or replace function cas_broadcast_event_notice() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_last_seq bigint;
  v_types text[];
  v_task_ids uuid[];
begin
  select max(e.seq), array_agg(e.event_type order by e.seq), array_agg(e.task_id order by e.seq)
    into v_last_seq, v_types, v_task_ids
    from new_events e;
  if v_last_seq is not null then
    perform realtime.send(n, 'notice', 'cas:feed', true)
      from public.cas_feed_notices(v_last_seq, v_types, v_task_ids) as n;
  end if;
  return null;
end $$;

-- Installs (again) the Broadcast from Database triggers where Supabase's realtime schema exists;
-- false where it does not. For a project whose realtime schema appeared after the migrations ran
-- (the service warns at start): `select cas_install_realtime_broadcast();` in its SQL editor. It
-- replaces re-running 20261126000000_cas_supabase_realtime.sql, which would put back the per-row
-- trigger and the policy that let signed-in users receive the doorbells
-- (20261202000400_cas_api_keys_and_rls.sql dropped it).
create or replace function cas_install_realtime_broadcast() returns boolean
language plpgsql set search_path = public, pg_temp as $$
begin
  if to_regprocedure('realtime.send(jsonb, text, text, boolean)') is null then
    return false;
  end if;
  drop trigger if exists cas_broadcast_event_notice on cas_agent_events;
  create trigger cas_broadcast_event_notice
    after insert on cas_agent_events
    referencing new table as new_events
    for each statement execute function cas_broadcast_event_notice();
  drop trigger if exists cas_broadcast_log_notice on cas_agent_logs;
  create trigger cas_broadcast_log_notice
    after insert on cas_agent_logs
    referencing new table as new_entries
    for each statement execute function cas_broadcast_log_notice();
  return true;
end $$;

-- The start-up check also asks that the event trigger fire per statement (an older, per-row one
-- sends notices this version does not read).
create or replace function cas_broadcasts_notices() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from pg_catalog.pg_trigger
    where tgname = 'cas_broadcast_event_notice' and tgrelid = 'public.cas_agent_events'::regclass
      and (tgtype & 1) = 0 -- TRIGGER_TYPE_ROW unset: once per statement
  )
$$;

select cas_install_realtime_broadcast();
select cas_restrict_function_access();
