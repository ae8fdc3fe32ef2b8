-- Claims and completion batches write their tasks set-wise.
--
-- A claim of ten tasks ran ten UPDATEs of cas_tasks (each firing the counter triggers of
-- 20261202000200_cas_retention.sql), ten updates of agent status rows and ten of the
-- event-sequence row; a completion batch the same, plus one duration point per INSERT. Measured on
-- a serial claim-10/complete-10 loop (track_functions = all): about 1 ms of database time per task,
-- over half of it in those per-row statements and their triggers. Now a claim begins all its
-- attempts with one UPDATE (the triggers fire once), one update per agent and one append of all its
-- events; a completion batch ends its attempts the same way.
--
-- Behaviour is unchanged: the same rows, events (in the same order per task), counters and points.
-- Tasks with a parent or in a workflow still end one at a time within a batch, in the lock order,
-- so each hand-off or parent settlement sees the tasks before it as before.
--
-- Lock order: unchanged, each lock taken once (task rows, their parents and runs, their agents, the
-- event-sequence row last).

-- Appends events with consecutive seqs in the order given: one update of the sequence row for all of
-- them, and a doorbell each (listeners read the rows by seq).
create or replace function cas_append_events(
  p_types text[],
  p_agent_ids text[],
  p_task_ids uuid[],
  p_payloads jsonb[],
  p_user_ids text[] default null
) returns setof cas_agent_events
language plpgsql set search_path = public, pg_temp as $$
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
  perform pg_notify('cas_feed', json_build_object(
      'kind', 'event', 'seq', v_last - v_count + e.n, 'type', e.type, 'agentId', e.agent_id, 'taskId', e.task_id
    )::text)
    from unnest(p_types, p_agent_ids, p_task_ids) with ordinality as e(type, agent_id, task_id, n)
    order by e.n;
end $$;

create or replace function cas_append_event(
  p_type text,
  p_agent_id text,
  p_task_id uuid,
  p_payload jsonb default '{}'::jsonb,
  p_user_id text default null
) returns cas_agent_events
language sql set search_path = public, pg_temp as $$
  select * from cas_append_events(array[p_type], array[p_agent_id], array[p_task_id], array[p_payload], array[p_user_id])
$$;

-- Begins attempts of claimed tasks, which the caller holds with their agents' rows: one UPDATE of
-- the tasks, one update per agent, their task_started events in p_task_ids' order. Returns the
-- tasks in that order.
create or replace function cas_begin_attempts(p_task_ids uuid[], p_worker_id text, p_lease_ms int)
returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_resumed uuid[];
begin
  if coalesce(cardinality(p_task_ids), 0) = 0 then
    return;
  end if;
  -- A waiting task resumes its attempt instead of beginning a new one.
  select coalesce(array_agg(id), '{}') into v_resumed from cas_tasks where id = any (p_task_ids) and status = 'waiting';
  update cas_tasks
    set status = 'running', attempts = attempts + case when id = any (v_resumed) then 0 else 1 end,
        worker_id = p_worker_id, lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => p_lease_ms / 1000.0),
        started_at = clock_timestamp(), progress = null, progress_message = null, waiting_for = null,
        updated_at = now()
    where id = any (p_task_ids);
  update cas_agent_status s
    set running_tasks = s.running_tasks + begun.n,
        status = case when s.status = 'stopped' then s.status else 'busy' end,
        last_activity_at = now(), updated_at = now()
    from (select agent_id, count(*)::int as n from cas_tasks where id = any (p_task_ids) group by agent_id) begun
    where s.agent_id = begun.agent_id;
  perform cas_append_events(
    array_fill('task_started'::text, array[cardinality(p_task_ids)]),
    array_agg(t.agent_id order by b.n),
    array_agg(t.id order by b.n),
    array_agg(jsonb_build_object('attempt', t.attempts, 'workerId', p_worker_id, 'resumed', t.id = any (v_resumed))
              order by b.n))
    from unnest(p_task_ids) with ordinality as b(id, n) join cas_tasks t on t.id = b.id;
  return query
    select t.* from unnest(p_task_ids) with ordinality as b(id, n) join cas_tasks t on t.id = b.id order by b.n;
end $$;

create or replace function cas_claim_tasks(
  p_worker_id text,
  p_limit int default 1,
  p_lease_ms int default 30000,
  p_agent_ids text[] default null,
  p_max_running_per_caller int default null
) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_ids uuid[];
  v_id uuid;
  v_caller_key bigint;
  v_next record;
  -- The attempts this claim begins, with their agents and callers: counted against the limits of
  -- the tasks after them.
  v_begin uuid[] := '{}';
  v_begin_agents text[] := '{}';
  v_begin_callers text[] := '{}';
begin
  -- Due queued tasks by priority, and due waiting tasks (resumed) by when they came due; each set
  -- skips rows other workers hold; the best p_limit of both are claimed.
  with queued as (
    -- cas_task_claimable's condition written out: the hot path of every claim, planned inline.
    select t.id, t.priority, t.run_at, t.seq from cas_tasks t
    where t.status = 'queued' and t.run_at <= now()
      and (p_agent_ids is null or t.agent_id = any (p_agent_ids))
      and not exists (
        select 1 from cas_agents a join cas_agent_status s on s.agent_id = a.id
        where a.id = t.agent_id and s.running_tasks >= a.max_concurrency)
      and (p_max_running_per_caller is null
           or cas_running_tasks_of_caller(coalesce(t.user_id, '')) < p_max_running_per_caller)
    order by t.priority desc, t.run_at, t.seq
    limit greatest(p_limit, 0)
    for update of t skip locked
  ), resumed as (
    select t.id, t.priority, t.run_at, t.seq from cas_tasks t
    where t.status = 'waiting' and t.run_at <= now()
      and cas_task_claimable(t.agent_id, t.user_id, p_agent_ids, p_max_running_per_caller)
    order by t.run_at, t.seq
    limit greatest(p_limit, 0)
    for update of t skip locked
  )
  select array_agg(picked.id order by picked.priority desc, picked.run_at, picked.seq) into v_ids
  from (
    select * from queued union all select * from resumed
    order by priority desc, run_at, seq
    limit greatest(p_limit, 0)
  ) picked;
  if v_ids is null then
    return;
  end if;
  perform cas_lock_agent_status(v_ids);
  if p_max_running_per_caller is not null then
    for v_caller_key in
      select distinct hashtextextended('cas_caller:' || coalesce(user_id, ''), 0) as k
      from cas_tasks where id = any (v_ids) order by k
    loop
      perform pg_advisory_xact_lock(v_caller_key);
    end loop;
  end if;
  foreach v_id in array v_ids loop
    -- Read after the locks: an unregistering or a claim that committed meanwhile is seen.
    select t.agent_id, s.status, s.running_tasks, a.max_concurrency, coalesce(t.user_id, '') as caller into v_next
      from cas_tasks t
      join cas_agents a on a.id = t.agent_id
      join cas_agent_status s on s.agent_id = t.agent_id
      where t.id = v_id;
    if v_next.status = 'stopped' then
      -- Its parent, if any, is settled by cas_settle_finished_children (its row is not locked here).
      perform cas_cancel_for_unregistered_agent(v_id, null);
    elsif v_next.max_concurrency is not null
          and v_next.running_tasks + coalesce(cardinality(array_positions(v_begin_agents, v_next.agent_id)), 0)
              >= v_next.max_concurrency then
      continue; -- stays queued for a later claim
    elsif p_max_running_per_caller is not null
          and cas_running_tasks_of_caller(v_next.caller)
              + coalesce(cardinality(array_positions(v_begin_callers, v_next.caller)), 0)
              >= p_max_running_per_caller then
      continue;
    else
      v_begin := v_begin || v_id;
      v_begin_agents := v_begin_agents || v_next.agent_id;
      v_begin_callers := v_begin_callers || v_next.caller;
    end if;
  end loop;
  return query select * from cas_begin_attempts(v_begin, p_worker_id, p_lease_ms);
end $$;
-- As set by 20261203000500_cas_batched_completion.sql (a new definition drops them).
alter function cas_claim_tasks(text, int, int, text[], int) set enable_sort = off;
alter function cas_claim_tasks(text, int, int, text[], int) set enable_bitmapscan = off;
alter function cas_claim_tasks(text, int, int, text[], int) set jit = off;

drop function if exists cas_begin_attempt(uuid, text, int);

-- Ends the attempts of running tasks the caller holds with their agents' rows: their agents' running
-- counts (one update per agent) and a duration point each. Returns the durations in p_ids' order.
create or replace function cas_end_attempts(p_ids uuid[]) returns double precision[]
language plpgsql set search_path = public, pg_temp as $$
declare
  v_durations double precision[];
begin
  select array_agg(extract(epoch from clock_timestamp() - t.started_at) * 1000 order by b.n) into v_durations
    from unnest(p_ids) with ordinality as b(id, n) join cas_tasks t on t.id = b.id;
  update cas_agent_status s
    set running_tasks = greatest(s.running_tasks - ended.n, 0),
        status = case when s.status = 'stopped' then s.status
                      when s.running_tasks - ended.n > 0 then 'busy' else 'idle' end,
        last_activity_at = now(), updated_at = now()
    from (select agent_id, count(*)::int as n from cas_tasks where id = any (p_ids) group by agent_id) ended
    where s.agent_id = ended.agent_id;
  insert into cas_metrics_timeseries (agent_id, metric_name, value, tags)
    select t.agent_id, 'task_duration_ms', v_durations[b.n],
           jsonb_build_object('action', t.action, 'attempt', t.attempts)
    from unnest(p_ids) with ordinality as b(id, n) join cas_tasks t on t.id = b.id
    order by b.n;
  return v_durations;
end $$;

create or replace function cas_end_attempt(p_task cas_tasks) returns double precision
language sql set search_path = public, pg_temp as $$
  select (cas_end_attempts(array[p_task.id]))[1]
$$;

-- Ends tasks whose attempts ended (cas_end_attempts) in p_status, with the result, error and event
-- payload of each (arrays in p_ids' order; null arrays for none): one UPDATE, their events in that
-- order, then each task's parent step and workflow hand-off. Returns the tasks as they ended, in that
-- order. The caller holds the tasks, their parents and runs, and their agents' rows.
create or replace function cas_finish_tasks(
  p_ids uuid[],
  p_status text,
  p_durations double precision[],
  p_results jsonb[],
  p_errors jsonb[],
  p_payloads jsonb[]
) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks;
begin
  update cas_tasks t
    set status = p_status, result = f.result, error = f.error,
        progress = case when p_status = 'succeeded' then 1 else t.progress end,
        finished_at = clock_timestamp(), duration_ms = f.duration, worker_id = null,
        lease_token = null, lease_expires_at = null, waiting_for = null, updated_at = now()
    from unnest(p_ids, p_durations, p_results, p_errors) as f(id, duration, result, error)
    where t.id = f.id;
  perform cas_append_events(
    array_fill(case p_status when 'succeeded' then 'task_completed' when 'failed' then 'task_failed'
                             else 'task_cancelled' end, array[cardinality(p_ids)]),
    array_agg(t.agent_id order by f.n),
    array_agg(t.id order by f.n),
    array_agg(jsonb_build_object('attempt', t.attempts, 'durationMs', f.duration) || coalesce(f.payload, '{}'::jsonb)
              order by f.n))
    from unnest(p_ids, p_durations, p_payloads) with ordinality as f(id, duration, payload, n)
    join cas_tasks t on t.id = f.id;
  -- The rows as this UPDATE left them (the loop's query reads them once, before any hand-off).
  for v_task in
    select t.* from unnest(p_ids) with ordinality as b(id, n) join cas_tasks t on t.id = b.id order by b.n
  loop
    perform cas_settle_child(v_task);
    if v_task.workflow_run_id is not null then
      perform cas_workflow_task_ended(v_task);
    end if;
    return next v_task;
  end loop;
end $$;

create or replace function cas_finish_task(
  p_task cas_tasks,
  p_status text,
  p_duration double precision,
  p_result jsonb,
  p_error jsonb,
  p_payload jsonb
) returns cas_tasks
language sql set search_path = public, pg_temp as $$
  select * from cas_finish_tasks(array[p_task.id], p_status, array[p_duration], array[p_result], array[p_error],
                                 array[p_payload])
$$;

-- p_items: [{ "id": uuid, "leaseToken": uuid, "result": json }]. Returns the tasks it completed;
-- an item whose lease is no longer current is left alone and absent from the result (the caller
-- completes it alone with cas_complete_task, which raises the precise CONFLICT or NOT_FOUND).
create or replace function cas_complete_tasks(p_items jsonb)
returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_ids uuid[];
  v_durations double precision[];
  v_group record;
begin
  if jsonb_typeof(p_items) is distinct from 'array' then
    raise exception using errcode = 'CASBI', message = 'p_items must be a JSON array';
  end if;
  -- Locked first, and re-checked once locked: an attempt swept meanwhile is not completed here.
  select array_agg(locked.id order by locked.depth desc, locked.id) into v_ids
  from (
    select t.id, t.depth from cas_tasks t
    join jsonb_to_recordset(p_items) as i(id uuid, "leaseToken" uuid) on i.id = t.id
    where t.status = 'running' and t.lease_token = i."leaseToken"
    order by t.depth desc, t.id
    for update of t
  ) locked;
  if v_ids is null then
    return;
  end if;
  perform cas_lock_parents(v_ids);
  perform cas_lock_agent_status(v_ids);
  v_durations := cas_end_attempts(v_ids);
  -- Tasks with neither a parent nor a workflow end together; each of the others alone, in the lock
  -- order, so its parent settlement or hand-off sees the tasks before it ended.
  for v_group in
    select array_agg(b.id order by b.n) as ids, array_agg(v_durations[b.n] order by b.n) as durations,
           array_agg(r.result order by b.n) as results
    from unnest(v_ids) with ordinality as b(id, n)
    join cas_tasks t on t.id = b.id
    -- Each task's result, the items read once (the first item of a task id if it came twice).
    left join (
      select distinct on (i.id) i.id, i.result
      from jsonb_array_elements(p_items) with ordinality as e(item, n)
      cross join lateral jsonb_to_record(e.item) as i(id uuid, result jsonb)
      order by i.id, e.n
    ) r on r.id = b.id
    group by case when t.parent_id is null and t.workflow_run_id is null then 0 else b.n end
    order by min(b.n)
  loop
    return query select * from cas_finish_tasks(v_group.ids, 'succeeded', v_group.durations, v_group.results,
                                                null, null);
  end loop;
end $$;

-- The functions that reach task rows by id take them by index whatever the statistics say. A burst
-- into the queue (thousands of tasks queued in one go) leaves the planner thinking cas_tasks holds
-- a few hundred rows until autovacuum analyses it, and it then scanned the whole table for each of
-- these statements (0.3 to 2 ms each, several per claim and completion, all while holding the
-- agents' rows). The setting holds for the functions they call, the counter triggers included.
alter function cas_begin_attempts(uuid[], text, int) set enable_seqscan = off;
alter function cas_end_attempts(uuid[]) set enable_seqscan = off;
alter function cas_finish_tasks(uuid[], text, double precision[], jsonb[], jsonb[], jsonb[]) set enable_seqscan = off;
alter function cas_lock_agent_status(uuid[]) set enable_seqscan = off;
alter function cas_lock_parents(uuid[]) set enable_seqscan = off;
alter function cas_complete_tasks(jsonb) set enable_seqscan = off;
alter function cas_extend_lease(uuid[], uuid[], int) set enable_seqscan = off;

-- The statements of the hot path use their generic plans. PL/pgSQL otherwise kept planning some of
-- them afresh on every call (a custom plan for the ids at hand, which it judged cheaper than the
-- generic one): a claim of one task spent 1.8 ms, most of it planning, and 0.6 ms with generic
-- plans (a serial enqueue-and-claim loop, track_functions = all). Their statements reach rows by
-- key or walk an index in order, so the values at hand would not change the plan anyway.
alter function cas_claim_tasks(text, int, int, text[], int) set plan_cache_mode = force_generic_plan;
alter function cas_begin_attempts(uuid[], text, int) set plan_cache_mode = force_generic_plan;
alter function cas_complete_tasks(jsonb) set plan_cache_mode = force_generic_plan;
alter function cas_end_attempts(uuid[]) set plan_cache_mode = force_generic_plan;
alter function cas_finish_tasks(uuid[], text, double precision[], jsonb[], jsonb[], jsonb[])
  set plan_cache_mode = force_generic_plan;
alter function cas_lock_agent_status(uuid[]) set plan_cache_mode = force_generic_plan;
alter function cas_lock_parents(uuid[]) set plan_cache_mode = force_generic_plan;
alter function cas_append_events(text[], text[], uuid[], jsonb[], text[]) set plan_cache_mode = force_generic_plan;
alter function cas_count_task_changes(jsonb, jsonb) set plan_cache_mode = force_generic_plan;
alter function cas_count_inserted_tasks() set plan_cache_mode = force_generic_plan;
alter function cas_count_updated_tasks() set plan_cache_mode = force_generic_plan;
alter function cas_extend_lease(uuid[], uuid[], int) set plan_cache_mode = force_generic_plan;

select cas_restrict_function_access();
