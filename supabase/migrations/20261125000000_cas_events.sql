-- CAS core: the ordered event log every state change writes to.
--
-- Glossary (shared by all cas_ migrations)
--   agent    a registered worker role (marketer, analyst, ...) identified by a slug
--   task     one request to run an agent's action; attempts are its executions
--   lease    how long a worker may hold a running task before others may reclaim it
--   event    an immutable row in cas_agent_events; seq orders all events globally
--   cursor   a client's position in the event log (an encoded seq)
--   feed     the NOTIFY doorbell ('cas_feed') that tells listeners to read new rows

-- Errors raised by cas_ functions use these SQLSTATEs so every driver maps them the same way:
--   CASNF not found, CASCF conflict, CASBI bad user input.

create table if not exists cas_event_sequence (
  id boolean primary key default true check (id),
  last_seq bigint not null default 0
);
comment on table cas_event_sequence is
  'One row holding the last event sequence number. Updating it row-locks until commit, so event '
  'sequence numbers are contiguous and commit in order: a reader that has seen seq N has seen every '
  'event before N.';
insert into cas_event_sequence (id, last_seq) values (true, 0) on conflict (id) do nothing;

create table if not exists cas_agent_events (
  id uuid primary key default gen_random_uuid(),
  seq bigint not null unique,
  event_type text not null check (event_type in (
    'agent_registered', 'agent_unregistered',
    'task_queued', 'task_started', 'task_progress', 'task_completed', 'task_failed',
    'task_cancel_requested', 'task_cancelled', 'task_retry_scheduled',
    'state_updated', 'state_reset'
  )),
  agent_id text,
  task_id uuid,
  user_id text,
  payload jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default clock_timestamp()
);
comment on table cas_agent_events is 'Audit trail and event source: one row per state change, ordered by seq.';
comment on column cas_agent_events.seq is 'Global, gap-free, strictly increasing; assigned in the writing transaction.';
create index if not exists cas_agent_events_agent_created_idx on cas_agent_events (agent_id, created_at);
create index if not exists cas_agent_events_agent_seq_idx on cas_agent_events (agent_id, seq);
create index if not exists cas_agent_events_task_seq_idx on cas_agent_events (task_id, seq);
create index if not exists cas_agent_events_type_seq_idx on cas_agent_events (event_type, seq);

-- Appends one event. Called last in each transition so the sequence row lock is held briefly.
create or replace function cas_append_event(
  p_type text,
  p_agent_id text,
  p_task_id uuid,
  p_payload jsonb default '{}'::jsonb,
  p_user_id text default null
) returns cas_agent_events
language plpgsql as $$
declare
  v_seq bigint;
  v_event cas_agent_events;
begin
  update cas_event_sequence set last_seq = last_seq + 1 where id returning last_seq into v_seq;
  insert into cas_agent_events (seq, event_type, agent_id, task_id, user_id, payload)
  values (v_seq, p_type, p_agent_id, p_task_id, p_user_id, coalesce(p_payload, '{}'::jsonb))
  returning * into v_event;
  -- A doorbell, not a mailbox: listeners read the rows by seq.
  perform pg_notify('cas_feed', json_build_object(
    'kind', 'event', 'seq', v_seq, 'type', p_type, 'agentId', p_agent_id, 'taskId', p_task_id
  )::text);
  return v_event;
end $$;

-- The newest event's seq: where a live-only reader starts.
create or replace function cas_event_head() returns bigint
language sql stable as $$
  select last_seq from cas_event_sequence where id
$$;

create or replace function cas_list_events(
  p_agent_id text default null,
  p_task_id uuid default null,
  p_types text[] default null,
  p_after_seq bigint default null,
  p_limit int default 50
) returns setof cas_agent_events
language sql stable as $$
  select * from cas_agent_events e
  where (p_agent_id is null or e.agent_id = p_agent_id)
    and (p_task_id is null or e.task_id = p_task_id)
    and (p_types is null or e.event_type = any (p_types))
    and e.seq > coalesce(p_after_seq, 0)
  order by e.seq
  limit greatest(p_limit, 0)
$$;
