-- Per-agent state (versioned, soft-deleted, full history), structured logs and metric time series.

create table if not exists cas_agent_config (
  id uuid primary key default gen_random_uuid(),
  agent_id text not null references cas_agents (id),
  version int not null check (version >= 1),
  config jsonb not null check (jsonb_typeof(config) = 'object'),
  is_active boolean not null default true,
  user_id text,
  created_at timestamptz not null default now(),
  deactivated_at timestamptz,
  unique (agent_id, version),
  check (is_active = (deactivated_at is null))
);
comment on table cas_agent_config is
  'Agent state history. One active row per agent at most; updates deactivate it and add version + 1.';
create unique index if not exists cas_agent_config_active_idx on cas_agent_config (agent_id) where is_active;
create index if not exists cas_agent_config_agent_created_idx on cas_agent_config (agent_id, created_at);

create table if not exists cas_agent_logs (
  id bigint generated always as identity primary key,
  agent_id text references cas_agents (id),
  task_id uuid,
  level text not null check (level in ('debug', 'info', 'warn', 'error')),
  message text not null check (char_length(message) <= 10000),
  context jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default clock_timestamp()
);
comment on table cas_agent_logs is 'Structured logs written by agent handlers and the runtime.';
create index if not exists cas_agent_logs_agent_created_idx on cas_agent_logs (agent_id, created_at);
create index if not exists cas_agent_logs_task_idx on cas_agent_logs (task_id, id) where task_id is not null;
create index if not exists cas_agent_logs_created_idx on cas_agent_logs (created_at);

create table if not exists cas_metrics_timeseries (
  id bigint generated always as identity primary key,
  agent_id text references cas_agents (id),
  metric_name text not null check (char_length(metric_name) between 1 and 200),
  value double precision not null,
  tags jsonb not null default '{}'::jsonb,
  recorded_at timestamptz not null default clock_timestamp()
);
comment on table cas_metrics_timeseries is 'Measurements over time, e.g. task_duration_ms per attempt.';
create index if not exists cas_metrics_timeseries_agent_created_idx
  on cas_metrics_timeseries (agent_id, metric_name, recorded_at);

-- The state functions lock the agent row so concurrent writers of one agent take turns.
create or replace function cas_lock_agent(p_agent_id text) returns void
language plpgsql as $$
begin
  perform 1 from cas_agents where id = p_agent_id for update;
  if not found then
    perform cas_raise_not_found('agent', p_agent_id);
  end if;
end $$;

create or replace function cas_update_agent_state(
  p_agent_id text,
  p_data jsonb,
  p_expected_version int default null,
  p_user_id text default null
) returns setof cas_agent_config
language plpgsql as $$
declare
  v_current int;
  v_next int;
  v_row cas_agent_config;
begin
  perform cas_lock_agent(p_agent_id);
  if p_data is null or jsonb_typeof(p_data) <> 'object' then
    raise exception using errcode = 'CASBI', message = 'state data must be a JSON object';
  end if;
  select version into v_current from cas_agent_config where agent_id = p_agent_id and is_active;
  -- Version 0 stands for "no active state", so a client can create state only if none exists.
  if p_expected_version is not null and coalesce(v_current, 0) <> p_expected_version then
    perform cas_raise_conflict(format('state of agent "%s" is at version %s, not %s',
      p_agent_id, coalesce(v_current, 0), p_expected_version));
  end if;
  select coalesce(max(version), 0) + 1 into v_next from cas_agent_config where agent_id = p_agent_id;
  update cas_agent_config set is_active = false, deactivated_at = now()
    where agent_id = p_agent_id and is_active;
  insert into cas_agent_config (agent_id, version, config, user_id)
    values (p_agent_id, v_next, p_data, p_user_id)
    returning * into v_row;
  perform cas_append_event('state_updated', p_agent_id, null,
    jsonb_build_object('version', v_next, 'previousVersion', v_current), p_user_id);
  return next v_row;
end $$;

create or replace function cas_reset_agent_state(p_agent_id text, p_user_id text default null)
returns boolean
language plpgsql as $$
declare
  v_version int;
begin
  perform cas_lock_agent(p_agent_id);
  update cas_agent_config set is_active = false, deactivated_at = now()
    where agent_id = p_agent_id and is_active
    returning version into v_version;
  if v_version is null then
    return false;
  end if;
  perform cas_append_event('state_reset', p_agent_id, null,
    jsonb_build_object('version', v_version), p_user_id);
  return true;
end $$;

create or replace function cas_get_agent_states(p_agent_ids text[]) returns setof cas_agent_config
language sql stable as $$
  select * from cas_agent_config where agent_id = any (p_agent_ids) and is_active
$$;

create or replace function cas_agent_state_history(p_agent_id text, p_limit int default 50)
returns setof cas_agent_config
language sql stable as $$
  select * from cas_agent_config where agent_id = p_agent_id order by version desc limit greatest(p_limit, 0)
$$;

-- Inserts a batch of log entries: [{ agentId, taskId, level, message, context }]. Writers take
-- turns (a transaction lock) so log ids commit in order and a reader that has seen id N has seen
-- every entry before it; then one doorbell rings for the batch.
create or replace function cas_write_logs(p_entries jsonb) returns setof cas_agent_logs
language plpgsql as $$
begin
  if jsonb_array_length(p_entries) = 0 then
    return;
  end if;
  perform pg_advisory_xact_lock(4846791580151137002);
  return query
    insert into cas_agent_logs (agent_id, task_id, level, message, context)
    select e->>'agentId', (e->>'taskId')::uuid, e->>'level', e->>'message', coalesce(e->'context', '{}'::jsonb)
    from jsonb_array_elements(p_entries) with ordinality as x(e, n)
    order by n
    returning *;
  perform pg_notify('cas_feed', json_build_object(
    'kind', 'log', 'lastId', currval(pg_get_serial_sequence('cas_agent_logs', 'id'))
  )::text);
end $$;

-- The newest log entry's id: where a live-only log reader starts.
create or replace function cas_log_head() returns bigint
language sql stable as $$
  select coalesce(max(id), 0) from cas_agent_logs
$$;

create or replace function cas_list_logs(
  p_agent_id text default null,
  p_task_id uuid default null,
  p_levels text[] default null,
  p_from timestamptz default null,
  p_to timestamptz default null,
  p_after_id bigint default null,
  p_limit int default 50,
  p_newest_first boolean default false
) returns setof cas_agent_logs
language sql stable as $$
  select * from cas_agent_logs l
  where (p_agent_id is null or l.agent_id = p_agent_id)
    and (p_task_id is null or l.task_id = p_task_id)
    and (p_levels is null or l.level = any (p_levels))
    and (p_from is null or l.created_at >= p_from)
    and (p_to is null or l.created_at < p_to)
    and (p_after_id is null or (case when p_newest_first then l.id < p_after_id else l.id > p_after_id end))
  order by case when p_newest_first then -l.id else l.id end
  limit greatest(p_limit, 0)
$$;

-- Run metrics per agent over finished tasks in [p_from, p_to): one row per requested agent.
create or replace function cas_agent_metrics(
  p_agent_ids text[],
  p_from timestamptz default null,
  p_to timestamptz default null
) returns table (
  agent_id text,
  total_runs bigint,
  succeeded bigint,
  failed bigint,
  cancelled bigint,
  avg_duration_ms double precision,
  uptime_seconds double precision
)
language sql stable as $$
  select a.id,
         count(t.id),
         count(t.id) filter (where t.status = 'succeeded'),
         count(t.id) filter (where t.status = 'failed'),
         count(t.id) filter (where t.status = 'cancelled'),
         avg(t.duration_ms) filter (where t.status in ('succeeded', 'failed')),
         coalesce(extract(epoch from now() - s.started_at), 0)::double precision
  from unnest(p_agent_ids) as a(id)
  join cas_agent_status s on s.agent_id = a.id
  left join cas_tasks t on t.agent_id = a.id and t.finished_at is not null
    and (p_from is null or t.finished_at >= p_from)
    and (p_to is null or t.finished_at < p_to)
  group by a.id, s.started_at
$$;

create or replace function cas_metric_series(
  p_agent_id text,
  p_metric_name text,
  p_from timestamptz default null,
  p_to timestamptz default null,
  p_limit int default 500
) returns setof cas_metrics_timeseries
language sql stable as $$
  select * from cas_metrics_timeseries m
  where m.agent_id = p_agent_id and m.metric_name = p_metric_name
    and (p_from is null or m.recorded_at >= p_from)
    and (p_to is null or m.recorded_at < p_to)
  order by m.recorded_at
  limit greatest(p_limit, 0)
$$;
