-- Reads a frontend needs: how many events or log entries match a filter (a connection's
-- totalCount), the page before a cursor (backward paging, `last`/`before`), a metric in time
-- buckets with percentiles (charts), and the state versions of many agents in one query.
-- Read-only functions; like the other reads they build the statement from the filters given, so
-- each call is planned for its own filters whoever calls it (see 20261202000200).

-- 1. Counts ------------------------------------------------------------------------------------------

create or replace function cas_count_events(
  p_agent_id text default null,
  p_task_id uuid default null,
  p_types text[] default null
) returns bigint
language plpgsql stable set search_path = public, pg_temp as $$
declare
  v_count bigint;
begin
  execute format(
    'select count(*) from cas_agent_events e where true %s %s %s',
    case when p_agent_id is not null then 'and e.agent_id = $1' else '' end,
    case when p_task_id is not null then 'and e.task_id = $2' else '' end,
    case when p_types is not null then 'and e.event_type = any ($3)' else '' end)
    into v_count using p_agent_id, p_task_id, p_types;
  return v_count;
end $$;

create or replace function cas_count_logs(
  p_agent_id text default null,
  p_task_id uuid default null,
  p_levels text[] default null,
  p_from timestamptz default null,
  p_to timestamptz default null
) returns bigint
language plpgsql stable set search_path = public, pg_temp as $$
declare
  v_count bigint;
begin
  execute format(
    'select count(*) from cas_agent_logs l where true %s %s %s %s %s',
    case when p_agent_id is not null then 'and l.agent_id = $1' else '' end,
    case when p_task_id is not null then 'and l.task_id = $2' else '' end,
    case when p_levels is not null then 'and l.level = any ($3)' else '' end,
    case when p_from is not null then 'and l.created_at >= $4' else '' end,
    case when p_to is not null then 'and l.created_at < $5' else '' end)
    into v_count using p_agent_id, p_task_id, p_levels, p_from, p_to;
  return v_count;
end $$;

-- 2. Backward pages. The events before a position, newest first (the log entries have cas_list_logs'
-- p_newest_first). The caller turns the page back into log order.

create or replace function cas_list_events_before(
  p_agent_id text default null,
  p_task_id uuid default null,
  p_types text[] default null,
  p_before_seq bigint default null,
  p_limit int default 50
) returns setof cas_agent_events
language plpgsql stable set search_path = public, pg_temp as $$
begin
  return query execute format(
    'select * from cas_agent_events e where true %s %s %s %s order by e.seq desc limit $5',
    case when p_agent_id is not null then 'and e.agent_id = $1' else '' end,
    case when p_task_id is not null then 'and e.task_id = $2' else '' end,
    case when p_types is not null then 'and e.event_type = any ($3)' else '' end,
    case when p_before_seq is not null then 'and e.seq < $4' else '' end)
    using p_agent_id, p_task_id, p_types, p_before_seq, greatest(p_limit, 0);
end $$;

-- The tasks listed before a position of the tasks list (newest first): those queued after it,
-- nearest first, i.e. oldest first. Only p_user_id's when given (viewers without tasks:all).

create or replace function cas_list_tasks_newer(
  p_agent_id text default null,
  p_statuses text[] default null,
  p_after_seq bigint default null,
  p_limit int default 50,
  p_user_id text default null
) returns setof cas_tasks
language plpgsql stable set search_path = public, pg_temp as $$
begin
  return query execute format(
    'select * from cas_tasks t where true %s %s %s %s order by t.seq asc limit $4',
    case when p_agent_id is not null then 'and t.agent_id = $1' else '' end,
    case when p_statuses is not null then 'and t.status = any ($2)' else '' end,
    case when p_after_seq is not null then 'and t.seq > $3' else '' end,
    case when p_user_id is not null then 'and t.user_id = $5' else '' end)
    using p_agent_id, p_statuses, p_after_seq, greatest(p_limit, 0), p_user_id;
end $$;

-- 3. A metric in buckets of p_bucket_seconds over [p_from, p_to), oldest first; empty buckets are
-- left out. Buckets are aligned to the epoch, so the same range always gives the same buckets.

create or replace function cas_metric_buckets(
  p_agent_id text,
  p_metric_name text,
  p_from timestamptz,
  p_to timestamptz,
  p_bucket_seconds int
) returns table (
  bucket_start timestamptz,
  points bigint,
  avg_value double precision,
  p50 double precision,
  p95 double precision,
  max_value double precision
)
language sql stable set search_path = public, pg_temp as $$
  select to_timestamp(floor(extract(epoch from m.recorded_at) / p_bucket_seconds) * p_bucket_seconds),
         count(*),
         avg(m.value),
         percentile_cont(0.5) within group (order by m.value),
         percentile_cont(0.95) within group (order by m.value),
         max(m.value)
  from cas_metrics_timeseries m
  where m.agent_id = p_agent_id
    and m.metric_name = p_metric_name
    and m.recorded_at >= p_from
    and m.recorded_at < p_to
  group by 1
  order by 1
$$;

-- 4. The newest p_limit state versions of each agent, newest first per agent.

create or replace function cas_agent_state_histories(p_agent_ids text[], p_limit int default 20)
returns setof cas_agent_config
language sql stable set search_path = public, pg_temp as $$
  select c.*
  from unnest(p_agent_ids) as a (agent_id)
  cross join lateral (
    select * from cas_agent_config s
    where s.agent_id = a.agent_id
    order by s.version desc
    limit greatest(p_limit, 0)
  ) c
  order by c.agent_id, c.version desc
$$;

select cas_restrict_function_access();
