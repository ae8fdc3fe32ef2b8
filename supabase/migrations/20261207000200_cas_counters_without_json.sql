-- The task counters (cas_task_counts, cas_task_rollups) are kept from arrays instead of JSON.
--
-- The statement triggers of 20261202000200_cas_retention.sql handed a statement's changed rows to
-- cas_count_task_changes as JSON: a jsonb object built per row, aggregated, then taken apart again
-- three times. On a worker draining no-op tasks that was a fifth of the database time of every
-- claim and completion (track_functions = all). Now each trigger reads its transition tables once
-- into arrays of the counted columns and cas_count_task_changes unnests them. What is counted, and
-- the lock order (the agents' rows, sorted, before any counter row), are unchanged.

-- The triggers call cas_count_task_changes only when rows changed (an `if` on variables, not a
-- `perform ... where`): a statement of a signed-in Supabase user changes no row under RLS, and a
-- query naming the function would still be checked for EXECUTE, which only the service holds.

-- Applies one statement's changes to the counters: a +1 or -1 per task and status it entered or
-- left (p_agent_ids, p_statuses, p_deltas) and the tasks that became final in it (p_finished_*).
create or replace function cas_count_task_changes(
  p_agent_ids text[],
  p_statuses text[],
  p_deltas int[],
  p_finished_agent_ids text[],
  p_finished_statuses text[],
  p_finished_at timestamptz[],
  p_finished_durations double precision[]
) returns void
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
  -- Lock order: the agents' rows, by id, before any counter row (20261202000200_cas_retention.sql).
  perform 1 from cas_agent_status where agent_id = any (p_agent_ids) order by agent_id for no key update;
  with deltas as (
    select d.agent_id, d.status, sum(d.delta) as delta
    from unnest(p_agent_ids, p_statuses, p_deltas) as d(agent_id, status, delta)
    group by d.agent_id, d.status
    having sum(d.delta) <> 0
  ),
  updated as (
    update cas_task_counts c set tasks = c.tasks + d.delta
    from deltas d where c.agent_id = d.agent_id and c.status = d.status
    returning c.agent_id, c.status
  )
  -- A first task of an agent in a status: the agent's row lock keeps others from racing here.
  insert into cas_task_counts (agent_id, status, tasks)
    select d.agent_id, d.status, d.delta from deltas d
    where not exists (select 1 from updated u where u.agent_id = d.agent_id and u.status = d.status);
  if p_finished_agent_ids is null then
    return;
  end if;
  insert into cas_task_rollups as r (agent_id, hour, succeeded, failed, cancelled, duration_ms_sum, duration_count)
    select f.agent_id, cas_hour_of(f.finished_at),
           count(*) filter (where f.status = 'succeeded'),
           count(*) filter (where f.status = 'failed'),
           count(*) filter (where f.status = 'cancelled'),
           coalesce(sum(f.duration_ms) filter (where f.status in ('succeeded', 'failed')), 0),
           count(f.duration_ms) filter (where f.status in ('succeeded', 'failed'))
    from unnest(p_finished_agent_ids, p_finished_statuses, p_finished_at, p_finished_durations)
      as f(agent_id, status, finished_at, duration_ms)
    group by f.agent_id, cas_hour_of(f.finished_at)
    order by f.agent_id
  on conflict (agent_id, hour) do update
    set succeeded = r.succeeded + excluded.succeeded,
        failed = r.failed + excluded.failed,
        cancelled = r.cancelled + excluded.cancelled,
        duration_ms_sum = r.duration_ms_sum + excluded.duration_ms_sum,
        duration_count = r.duration_count + excluded.duration_count;
end $$;

create or replace function cas_count_inserted_tasks() returns trigger
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_agent_ids text[];
  v_statuses text[];
  v_deltas int[];
  v_finished_agent_ids text[];
  v_finished_statuses text[];
  v_finished_at timestamptz[];
  v_finished_durations double precision[];
begin
  select array_agg(n.agent_id), array_agg(n.status), array_agg(1),
         array_agg(n.agent_id) filter (where n.finished_at is not null),
         array_agg(n.status) filter (where n.finished_at is not null),
         array_agg(n.finished_at) filter (where n.finished_at is not null),
         array_agg(n.duration_ms) filter (where n.finished_at is not null)
    into v_agent_ids, v_statuses, v_deltas,
         v_finished_agent_ids, v_finished_statuses, v_finished_at, v_finished_durations
    from new_tasks n;
  if v_agent_ids is not null then
    perform cas_count_task_changes(v_agent_ids, v_statuses, v_deltas,
                                   v_finished_agent_ids, v_finished_statuses, v_finished_at, v_finished_durations);
  end if;
  return null;
end $$;

-- Only the rows whose status or agent changed count; an update that changes neither (progress,
-- leases) costs one scan of the transition tables.
create or replace function cas_count_updated_tasks() returns trigger
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_agent_ids text[];
  v_statuses text[];
  v_deltas int[];
  v_finished_agent_ids text[];
  v_finished_statuses text[];
  v_finished_at timestamptz[];
  v_finished_durations double precision[];
begin
  -- Each changed row leaves its old (agent, status) and enters its new one; it became final when
  -- it has a finished_at now and had none before.
  select array_agg(d.agent_id), array_agg(d.status), array_agg(d.delta),
         array_agg(n.agent_id) filter (where d.delta = 1 and n.finished_at is not null and o.finished_at is null),
         array_agg(n.status) filter (where d.delta = 1 and n.finished_at is not null and o.finished_at is null),
         array_agg(n.finished_at) filter (where d.delta = 1 and n.finished_at is not null and o.finished_at is null),
         array_agg(n.duration_ms) filter (where d.delta = 1 and n.finished_at is not null and o.finished_at is null)
    into v_agent_ids, v_statuses, v_deltas,
         v_finished_agent_ids, v_finished_statuses, v_finished_at, v_finished_durations
    from old_tasks o
    join new_tasks n on n.id = o.id
    cross join lateral (values (o.agent_id, o.status, -1), (n.agent_id, n.status, 1)) as d(agent_id, status, delta)
    where o.status is distinct from n.status or o.agent_id is distinct from n.agent_id;
  if v_agent_ids is not null then
    perform cas_count_task_changes(v_agent_ids, v_statuses, v_deltas,
                                   v_finished_agent_ids, v_finished_statuses, v_finished_at, v_finished_durations);
  end if;
  return null;
end $$;

create or replace function cas_count_deleted_tasks() returns trigger
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_agent_ids text[];
  v_statuses text[];
  v_deltas int[];
begin
  select array_agg(o.agent_id), array_agg(o.status), array_agg(-1)
    into v_agent_ids, v_statuses, v_deltas
    from deleted_tasks o;
  if v_agent_ids is not null then
    perform cas_count_task_changes(v_agent_ids, v_statuses, v_deltas, null, null, null, null);
  end if;
  return null;
end $$;

drop function if exists cas_count_task_changes(jsonb, jsonb);

select cas_restrict_function_access();
