-- An agent's running tasks, status and last activity are read from its task rows; cas_agent_status
-- keeps a copy that workers bring up to date once a second.
--
-- Every attempt that began or ended updated its agent's cas_agent_status row (running_tasks,
-- busy or idle, last_activity_at), and every claim and completion first locked the status rows of
-- its tasks' agents, to admit against maxConcurrency. Two workers' batches on the same agents
-- therefore ran one after the other (with the counters, 20261212000100_cas_counters_as_deltas.sql).
-- Now:
--   * cas_agents_view (which the API reads) computes running_tasks, status and last_activity_at
--     from the task rows: a partial index of running tasks by agent, and the index of finished
--     tasks by agent. `stopped` and `error` stay as stored.
--   * No attempt writes the status row. cas_refresh_agent_status copies the view's values into the
--     rows that differ (the seed's UIs read that table); workers call it once a second, and when
--     they stop.
--   * Admission counts an agent's running tasks from the task rows, under its status row's lock,
--     which claims and completions now take only for agents with a maxConcurrency (the only ones
--     that count can refuse). Ended attempts of the same batch are still running rows when the
--     batch admits, and are subtracted, as the per-caller limit always did.
--   * A stopped agent stays safe without that lock: unregistering locks the agent's cas_agents row
--     for update, which waits for, and is waited for by, the key-share lock every claim takes.
--
-- Lock order: unchanged (task rows, then cas_agents, then cas_agent_status, by agent id, then the
-- event-sequence row); claims of agents without a maxConcurrency just skip the status rows.
-- Refreshing takes its advisory lock, then the status rows it changes, in agent order.

create index if not exists cas_tasks_running_agent_idx on cas_tasks (agent_id, started_at)
  where status = 'running';

comment on column cas_agent_status.running_tasks is
  'Tasks of this agent in status running, as of the last refresh (at most about a second old while a worker runs); cas_agents_view counts them live.';
comment on column cas_agent_status.status is
  'stopped or error as set; otherwise busy while a task runs and idle else, as of the last refresh. cas_agents_view derives it live.';

-- Tasks of the agent running now (a count of index entries).
create or replace function cas_running_tasks_of_agent(p_agent_id text) returns bigint
language sql stable
set search_path = public, pg_temp
as $$
  select count(*) from cas_tasks where agent_id = p_agent_id and status = 'running'
$$;

create or replace view cas_agents_view with (security_invoker = true) as
select a.id, a.name, a.role, a.description, a.registered_at, a.unregistered_at,
       case when s.status in ('stopped', 'error') then s.status
            when running.tasks > 0 then 'busy'
            else 'idle' end as status,
       s.started_at,
       greatest(s.last_activity_at, running.last_started_at, finished.last_finished_at) as last_activity_at,
       s.error_message,
       running.tasks::int as running_tasks,
       a.max_concurrency
from cas_agents a
join cas_agent_status s on s.agent_id = a.id
cross join lateral (
  select count(*) as tasks, max(t.started_at) as last_started_at
  from cas_tasks t where t.agent_id = a.id and t.status = 'running'
) running
cross join lateral (
  select max(t.finished_at) as last_finished_at
  from cas_tasks t where t.agent_id = a.id and t.finished_at is not null
) finished;

-- Copies the live status (cas_agents_view) into the cas_agent_status rows that differ; returns
-- how many it changed. One refresher at a time (a transaction-level advisory lock): another caller
-- meanwhile changes nothing and returns 0, or, with p_wait (a worker that stops, whose last word
-- must not be lost to a refresh that read the status before its attempts ended), waits its turn.
create or replace function cas_refresh_agent_status(p_wait boolean default false) returns int
language plpgsql
set search_path = public, pg_temp
as $$
declare
  v_agent_ids text[];
  v_changed int;
begin
  if p_wait then
    perform pg_advisory_xact_lock(4846791580151137005);
  elsif not pg_try_advisory_xact_lock(4846791580151137005) then
    return 0;
  end if;
  select array_agg(v.id order by v.id) into v_agent_ids
    from cas_agents_view v join cas_agent_status s on s.agent_id = v.id
    where (s.status, s.running_tasks, s.last_activity_at)
          is distinct from (v.status, v.running_tasks, v.last_activity_at);
  if v_agent_ids is null then
    return 0;
  end if;
  perform 1 from cas_agent_status where agent_id = any (v_agent_ids) order by agent_id for no key update;
  -- Read again under the locks: an unregistering that committed meanwhile is seen.
  update cas_agent_status s
    set status = v.status, running_tasks = v.running_tasks, last_activity_at = v.last_activity_at,
        updated_at = now()
    from cas_agents_view v
    where v.id = s.agent_id and s.agent_id = any (v_agent_ids)
      and (s.status, s.running_tasks, s.last_activity_at)
          is distinct from (v.status, v.running_tasks, v.last_activity_at);
  get diagnostics v_changed = row_count;
  return v_changed;
end $$;

-- As 20261208000100_cas_lock_completions_by_id.sql, but the status rows only of the agents with a
-- maxConcurrency: the lock under which admission counts their running tasks.
create or replace function cas_lock_agent_status(p_task_ids uuid[]) returns void
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_agent_ids text[];
  v_run_ids uuid[];
begin
  select array_agg(t.agent_id), array_agg(t.workflow_run_id) filter (where t.workflow_run_id is not null)
    into v_agent_ids, v_run_ids
    from (select agent_id, workflow_run_id from cas_tasks where id = any (p_task_ids) offset 0) t;
  if v_run_ids is not null then
    v_agent_ids := v_agent_ids || array(
      select s.agent_id from cas_workflow_steps s
      join (select id, status from cas_workflow_runs where id = any (v_run_ids) offset 0) r on r.id = s.run_id
      where r.status = 'running');
  end if;
  perform 1 from cas_agents where id = any (v_agent_ids) order by id for key share;
  perform 1 from cas_agent_status s
    where s.agent_id in (select a.id from cas_agents a where a.id = any (v_agent_ids) and a.max_concurrency is not null)
    order by s.agent_id for no key update;
end $$;

-- As 20261206000200_cas_set_wise_attempts.sql, without the status row: the ended attempts'
-- durations and metric points.
create or replace function cas_end_attempts(p_ids uuid[]) returns double precision[]
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_durations double precision[];
begin
  select array_agg(extract(epoch from clock_timestamp() - t.started_at) * 1000 order by b.n) into v_durations
    from unnest(p_ids) with ordinality as b(id, n) join cas_tasks t on t.id = b.id;
  insert into cas_metrics_timeseries (agent_id, metric_name, value, tags)
    select t.agent_id, 'task_duration_ms', v_durations[b.n],
           jsonb_build_object('action', t.action, 'attempt', t.attempts)
    from unnest(p_ids) with ordinality as b(id, n) join cas_tasks t on t.id = b.id
    order by b.n;
  return v_durations;
end $$;

-- As 20261208000300_cas_one_write_per_batch.sql, without the status rows of the agents whose
-- attempts began.
create or replace function cas_write_attempts(
  p_ended uuid[],
  p_status text,
  p_durations double precision[],
  p_results jsonb[],
  p_errors jsonb[],
  p_payloads jsonb[],
  p_begun uuid[],
  p_worker_id text,
  p_lease_ms int
) returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_ended int := coalesce(cardinality(p_ended), 0);
  v_begun int := coalesce(cardinality(p_begun), 0);
  -- Begun tasks that were waiting resume their attempt instead of beginning a new one. Found by id
  -- alone (20261208000100_cas_lock_completions_by_id.sql): `status = 'waiting'` beside the ids had
  -- the planner walk every entry of the index of waiting tasks.
  v_resumed uuid[] := '{}';
begin
  if v_ended + v_begun = 0 then
    return;
  end if;
  if v_begun > 0 then
    select coalesce(array_agg(t.id) filter (where t.status = 'waiting'), '{}') into v_resumed
      from (select id, status from cas_tasks where id = any (p_begun) offset 0) t;
  end if;
  update cas_tasks t
    set status = case when w.ends then p_status else 'running' end,
        result = case when w.ends then w.result else t.result end,
        error = case when w.ends then w.error else t.error end,
        progress = case when not w.ends then null when p_status = 'succeeded' then 1 else t.progress end,
        progress_message = case when w.ends then t.progress_message end,
        attempts = t.attempts + case when w.ends or t.id = any (v_resumed) then 0 else 1 end,
        started_at = case when w.ends then t.started_at else clock_timestamp() end,
        finished_at = case when w.ends then clock_timestamp() else t.finished_at end,
        duration_ms = case when w.ends then w.duration else t.duration_ms end,
        worker_id = case when w.ends then null else p_worker_id end,
        lease_token = case when w.ends then null else gen_random_uuid() end,
        lease_expires_at = case when w.ends then null else now() + make_interval(secs => p_lease_ms / 1000.0) end,
        waiting_for = null,
        updated_at = now()
    from (
      select e.id, true as ends, e.duration, e.result, e.error
      from unnest(p_ended, p_durations, p_results, p_errors) as e(id, duration, result, error)
      union all
      select b.id, false, null, null, null from unnest(p_begun) as b(id)
    ) w
    where t.id = w.id;
  perform cas_append_events(
    array_agg(case when w.ends then case p_status when 'succeeded' then 'task_completed'
                                                  when 'failed' then 'task_failed'
                                                  else 'task_cancelled' end
                   else 'task_started' end order by w.n),
    array_agg(t.agent_id order by w.n),
    array_agg(t.id order by w.n),
    array_agg(case when w.ends
                   then jsonb_build_object('attempt', t.attempts, 'durationMs', w.duration)
                        || coalesce(w.payload, '{}'::jsonb)
                   else jsonb_build_object('attempt', t.attempts, 'workerId', p_worker_id,
                                           'resumed', t.id = any (v_resumed)) end
              order by w.n))
    from (
      select e.id, e.n, true as ends, e.duration, e.payload
      from unnest(p_ended, p_durations, p_payloads) with ordinality as e(id, duration, payload, n)
      union all
      select b.id, v_ended + b.n, false, null, null from unnest(p_begun) with ordinality as b(id, n)
    ) w
    join cas_tasks t on t.id = w.id;
  return query
    select t.* from (
      select e.id, e.n from unnest(p_ended) with ordinality as e(id, n)
      union all
      select b.id, v_ended + b.n from unnest(p_begun) with ordinality as b(id, n)
    ) w
    join cas_tasks t on t.id = w.id
    order by w.n;
end $$;

-- As 20261202000600_cas_durable_execution.sql, without the status row.
create or replace function cas_suspend_task(
  p_task_id uuid,
  p_lease_token uuid,
  p_keys text[],
  p_waiting_for jsonb
) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
  v_pending int;
  v_timer timestamptz;
  v_due timestamptz;
begin
  perform cas_lock_parents(array[p_task_id]);
  perform cas_lock_agent_status(array[p_task_id]);
  if v_task.cancel_requested_at is not null then
    return next cas_finish_task(v_task, 'cancelled', cas_end_attempt(v_task), null, v_task.error, null);
    return;
  end if;
  select count(*), min(wake_at) into v_pending, v_timer from cas_task_steps
    where task_id = p_task_id and step_key = any (p_keys) and status = 'pending';
  v_due := case when v_pending < cardinality(p_keys) then now() else coalesce(v_timer, cas_never()) end;

  update cas_tasks
    set status = 'waiting', worker_id = null, lease_token = null, lease_expires_at = null, run_at = v_due,
        waiting_for = coalesce(p_waiting_for, '{}'::jsonb) || jsonb_build_object('keys', to_jsonb(p_keys))
                      || case when v_timer is null then '{}'::jsonb else jsonb_build_object('until', v_timer) end,
        updated_at = now()
    where id = p_task_id
    returning * into v_task;
  perform cas_append_event('task_waiting', v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', v_task.attempts, 'waitingFor', v_task.waiting_for), null);
  if v_pending < cardinality(p_keys) then
    -- What it waits for arrived while the attempt was suspending: due at once, and every wait
    -- reads as waiting, then resumed.
    perform cas_append_event('task_resumed', v_task.agent_id, v_task.id,
      jsonb_build_object('reason', 'arrived_while_suspending'), null);
  end if;
  return next v_task;
end $$;

-- As 20261208000300_cas_one_write_per_batch.sql, counting an agent's running tasks from the task rows.
create or replace function cas_pick_claimable(
  p_limit int,
  p_agent_ids text[],
  p_max_running_per_caller int,
  p_ended uuid[] default null
) returns uuid[]
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set enable_sort = off
set enable_bitmapscan = off
set jit = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_ended_agents text[] := '{}';
  v_ended_callers text[] := '{}';
  v_ids uuid[];
begin
  if coalesce(p_limit, 0) <= 0 then
    return null;
  end if;
  if p_ended is not null then
    select coalesce(array_agg(t.agent_id), '{}'), coalesce(array_agg(coalesce(t.user_id, '')), '{}')
      into v_ended_agents, v_ended_callers
      from (select agent_id, user_id from cas_tasks where id = any (p_ended) offset 0) t;
  end if;
  with queued as (
    -- cas_task_claimable's condition written out: the hot path of every claim, planned inline.
    select t.id, t.priority, t.run_at, t.seq from cas_tasks t
    where t.status = 'queued' and t.run_at <= now()
      and (p_agent_ids is null or t.agent_id = any (p_agent_ids))
      and not exists (
        select 1 from cas_agents a
        where a.id = t.agent_id and a.max_concurrency is not null
          and cas_running_tasks_of_agent(t.agent_id)
              - coalesce(cardinality(array_positions(v_ended_agents, t.agent_id)), 0)
              >= a.max_concurrency)
      and (p_max_running_per_caller is null
           or cas_running_tasks_of_caller(coalesce(t.user_id, ''))
              - coalesce(cardinality(array_positions(v_ended_callers, coalesce(t.user_id, ''))), 0)
              < p_max_running_per_caller)
    order by t.priority desc, t.run_at, t.seq
    limit p_limit
    for update of t skip locked
  ), resumed as (
    select t.id, t.priority, t.run_at, t.seq from cas_tasks t
    where t.status = 'waiting' and t.run_at <= now()
      and cas_task_claimable(t.agent_id, t.user_id, p_agent_ids, p_max_running_per_caller,
                             v_ended_agents, v_ended_callers)
    order by t.run_at, t.seq
    limit p_limit
    for update of t skip locked
  )
  select array_agg(picked.id order by picked.priority desc, picked.run_at, picked.seq) into v_ids
  from (
    select * from queued union all select * from resumed
    order by priority desc, run_at, seq
    limit p_limit
  ) picked;
  return v_ids;
end $$;

-- As 20261208000300_cas_one_write_per_batch.sql, counting an agent's running tasks from the task rows.
create or replace function cas_task_claimable(
  p_agent_id text,
  p_user_id text,
  p_agent_ids text[],
  p_max_running_per_caller int,
  p_ended_agents text[] default '{}',
  p_ended_callers text[] default '{}'
) returns boolean
language plpgsql
stable
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
  return (p_agent_ids is null or p_agent_id = any (p_agent_ids))
    and not exists (
      select 1 from cas_agents a
      where a.id = p_agent_id and a.max_concurrency is not null
        and cas_running_tasks_of_agent(p_agent_id)
            - coalesce(cardinality(array_positions(p_ended_agents, p_agent_id)), 0)
            >= a.max_concurrency)
    and (p_max_running_per_caller is null
         or cas_running_tasks_of_caller(coalesce(p_user_id, ''))
            - coalesce(cardinality(array_positions(p_ended_callers, coalesce(p_user_id, ''))), 0)
            < p_max_running_per_caller);
end $$;

-- As 20261211000100_cas_admission_fast_path.sql, counting an agent's running tasks from the task rows
-- (less those this batch ends), as the per-caller limit does.
create or replace function cas_admissible(
  p_ids uuid[],
  p_ended uuid[],
  p_max_running_per_caller int
) returns uuid[]
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_id uuid;
  v_next record;
  v_ended_agents text[] := '{}';
  v_ended_callers text[] := '{}';
  -- The attempts admitted so far, with their agents and callers: counted against the limits of
  -- the tasks after them.
  v_begin uuid[] := '{}';
  v_begin_agents text[] := '{}';
  v_begin_callers text[] := '{}';
begin
  if p_ids is null then
    return v_begin;
  end if;
  -- No limit can refuse any of them: no per-caller limit, and none of their agents is stopped or
  -- has a maxConcurrency. The loop below would admit every one, in order, at a query per task.
  if p_max_running_per_caller is null and not exists (
      select 1 from cas_tasks t
      join cas_agents a on a.id = t.agent_id
      join cas_agent_status s on s.agent_id = t.agent_id
      where t.id = any (p_ids) and (s.status = 'stopped' or a.max_concurrency is not null)) then
    return p_ids;
  end if;
  -- Attempts this batch ends are still running rows: they leave their agent's and caller's counts.
  if p_ended is not null then
    select coalesce(array_agg(t.agent_id), '{}'), coalesce(array_agg(coalesce(t.user_id, '')), '{}')
      into v_ended_agents, v_ended_callers
      from (select agent_id, user_id from cas_tasks where id = any (p_ended) offset 0) t;
  end if;
  foreach v_id in array p_ids loop
    -- Read after the locks: an unregistering or a claim that committed meanwhile is seen.
    select t.agent_id, s.status, a.max_concurrency, coalesce(t.user_id, '') as caller into v_next
      from cas_tasks t
      join cas_agents a on a.id = t.agent_id
      join cas_agent_status s on s.agent_id = t.agent_id
      where t.id = v_id;
    if v_next.status = 'stopped' then
      -- Its parent, if any, is settled by cas_settle_finished_children (its row is not locked here).
      perform cas_cancel_for_unregistered_agent(v_id, null);
    elsif v_next.max_concurrency is not null
          and cas_running_tasks_of_agent(v_next.agent_id)
              - coalesce(cardinality(array_positions(v_ended_agents, v_next.agent_id)), 0)
              + coalesce(cardinality(array_positions(v_begin_agents, v_next.agent_id)), 0)
              >= v_next.max_concurrency then
      continue; -- stays queued for a later claim
    elsif p_max_running_per_caller is not null
          and cas_running_tasks_of_caller(v_next.caller)
              - coalesce(cardinality(array_positions(v_ended_callers, v_next.caller)), 0)
              + coalesce(cardinality(array_positions(v_begin_callers, v_next.caller)), 0)
              >= p_max_running_per_caller then
      continue;
    else
      v_begin := v_begin || v_id;
      v_begin_agents := v_begin_agents || v_next.agent_id;
      v_begin_callers := v_begin_callers || v_next.caller;
    end if;
  end loop;
  return v_begin;
end $$;

select cas_restrict_function_access();
