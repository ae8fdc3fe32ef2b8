-- A worker's completion batch writes its completed and its claimed tasks in one UPDATE, with one
-- append of their events.
--
-- cas_complete_and_claim_tasks (20261207000100_cas_complete_and_claim.sql) wrote the completions
-- (one UPDATE of cas_tasks, one append of events) and then began the claimed attempts (a second
-- UPDATE, a second append). Each UPDATE of cas_tasks fires the counter triggers, checks the table's
-- fifteen constraints (compiled afresh for every statement) and starts its own executor; each
-- append takes the sequence row and inserts and notifies once. perf on a backend running batches of
-- ten back to back: the counter triggers alone were a sixth of its CPU. Now the attempts a batch
-- ends and those it begins are written by one statement of each kind (cas_write_attempts), which
-- cas_finish_tasks and cas_begin_attempts also use: one implementation of each transition.
--
-- What changes is the order inside the transaction, not what is written: the claim is admitted
-- (cas_admissible) after the completions' attempts ended (their agents' running counts, as before)
-- but before their rows are written, so a per-caller limit counts the batch's completed tasks out
-- itself. Completed tasks with a parent or in a workflow still end one at a time with their
-- hand-offs, before the claim, as before: a batch with any of them takes that path.
--
-- The claim's pick also counts the batch's ended attempts out of their agents' and callers'
-- running tasks (cas_pick_claimable, p_ended): it ran before they were written, so a batch that
-- ended an agent's last allowed attempt (maxConcurrency) passed over that agent's next task, and
-- the worker, its claim having found nothing, waited for the next poll.
--
-- Lock order: unchanged (task rows, parents and runs, agents' rows sorted, callers, the sequence
-- row last); nothing after the sequence row waits.

-- Ends the attempts of p_ended (in p_status, with the arrays of cas_finish_tasks) and begins those
-- of p_begun (as a claim), in one UPDATE of cas_tasks; their agents' running counts for the begun
-- ones (the ended ones' were counted out by cas_end_attempts); then their events in one append: the
-- endings in p_ended's order, then task_started in p_begun's. Returns the ended tasks, then the
-- begun ones, in those orders. The caller holds the tasks, their parents and runs, and their
-- agents' rows.
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
  if v_begun > 0 then
    update cas_agent_status s
      set running_tasks = s.running_tasks + begun.n,
          status = case when s.status = 'stopped' then s.status else 'busy' end,
          last_activity_at = now(), updated_at = now()
      from (select agent_id, count(*)::int as n from cas_tasks where id = any (p_begun) group by agent_id) begun
      where s.agent_id = begun.agent_id;
  end if;
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

-- As 20261206000200_cas_set_wise_attempts.sql: ends tasks whose attempts ended (cas_end_attempts),
-- then each task's parent step and workflow hand-off, in order. Returns the tasks as they ended.
create or replace function cas_finish_tasks(
  p_ids uuid[],
  p_status text,
  p_durations double precision[],
  p_results jsonb[],
  p_errors jsonb[],
  p_payloads jsonb[]
) returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_task cas_tasks;
begin
  -- The function's rows are all written before the first hand-off runs: each row as the UPDATE
  -- left it.
  for v_task in
    select * from cas_write_attempts(p_ids, p_status, p_durations, p_results, p_errors, p_payloads, null, null, null)
  loop
    perform cas_settle_child(v_task);
    if v_task.workflow_run_id is not null then
      perform cas_workflow_task_ended(v_task);
    end if;
    return next v_task;
  end loop;
end $$;

-- As 20261206000200_cas_set_wise_attempts.sql: begins attempts of claimed tasks, which the
-- caller holds with their agents' rows. Returns the tasks in p_task_ids' order.
create or replace function cas_begin_attempts(p_task_ids uuid[], p_worker_id text, p_lease_ms int)
returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
begin
  return query select * from cas_write_attempts(null, null, null, null, null, null, p_task_ids, p_worker_id, p_lease_ms);
end $$;

-- The picked tasks (p_ids in claim order) that their agent's and caller's limits admit, in that
-- order; the caller holds the tasks, their agents' rows and (with a per-caller limit) the callers'
-- locks. A task of an unregistered agent is cancelled; one over a limit stays for a later claim.
-- p_ended: attempts this transaction ends whose rows are not written yet (their agents' running
-- counts are): their callers' running tasks are counted out.
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
  if p_max_running_per_caller is not null and p_ended is not null then
    select coalesce(array_agg(coalesce(t.user_id, '')), '{}') into v_ended_callers
      from (select user_id from cas_tasks where id = any (p_ended) offset 0) t;
  end if;
  foreach v_id in array p_ids loop
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

create or replace function cas_admit_claimed(
  p_ids uuid[],
  p_worker_id text,
  p_lease_ms int,
  p_max_running_per_caller int
) returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
begin
  if p_ids is null then
    return;
  end if;
  return query select * from cas_begin_attempts(cas_admissible(p_ids, null, p_max_running_per_caller),
                                                p_worker_id, p_lease_ms);
end $$;

-- The results of a completion batch's tasks (p_ids) from its items, in p_ids' order: the first
-- item of a task id if it came twice. (PL/pgSQL, as the helpers below: a SQL function with a
-- search_path setting is planned again at every call; 20261208000200_cas_wrappers_in_plpgsql.sql.)
create or replace function cas_completion_results(p_ids uuid[], p_items jsonb) returns jsonb[]
language plpgsql
immutable
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
  return (
    select array_agg(r.result order by b.n)
    from unnest(p_ids) with ordinality as b(id, n)
    left join (
      select distinct on (i.id) i.id, i.result
      from jsonb_array_elements(p_items) with ordinality as e(item, n)
      cross join lateral jsonb_to_record(e.item) as i(id uuid, result jsonb)
      order by i.id, e.n
    ) r on r.id = b.id);
end $$;

-- As 20261207000100_cas_complete_and_claim.sql, the results read by cas_completion_results.
create or replace function cas_finish_completions(p_ids uuid[], p_items jsonb) returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_durations double precision[];
  v_results jsonb[];
  v_group record;
begin
  if p_ids is null then
    return;
  end if;
  v_durations := cas_end_attempts(p_ids);
  v_results := cas_completion_results(p_ids, p_items);
  for v_group in
    select array_agg(b.id order by b.n) as ids, array_agg(v_durations[b.n] order by b.n) as durations,
           array_agg(v_results[b.n] order by b.n) as results
    from unnest(p_ids) with ordinality as b(id, n)
    join cas_tasks t on t.id = b.id
    group by case when t.parent_id is null and t.workflow_run_id is null then 0 else b.n end
    order by min(b.n)
  loop
    return query select * from cas_finish_tasks(v_group.ids, 'succeeded', v_group.durations, v_group.results,
                                                null, null);
  end loop;
end $$;

-- The hour a rollup counts a task in, for every finished task a counter trigger sees: as
-- 20261202000200_cas_retention.sql, in PL/pgSQL (an expression it evaluates without planning).
create or replace function cas_hour_of(p_at timestamptz) returns timestamptz
language plpgsql
immutable
set search_path = public, pg_temp
as $$
begin
  return date_bin('1 hour', p_at, timestamptz '2000-01-01 00:00:00+00');
end $$;

-- Whether a claim may start a task of this agent and caller now: the agent is among p_agent_ids
-- (all when null) and below its maxConcurrency, the caller below p_max_running_per_caller, each
-- with the attempts of p_ended_agents and p_ended_callers counted out (attempts the same
-- transaction ends: a completion batch's). Read without locks to pick candidates; the claim checks
-- again under them (cas_admissible).
drop function if exists cas_task_claimable(text, text, text[], int);
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
      select 1 from cas_agents a join cas_agent_status s on s.agent_id = a.id
      where a.id = p_agent_id
        and s.running_tasks - coalesce(cardinality(array_positions(p_ended_agents, p_agent_id)), 0)
            >= a.max_concurrency)
    and (p_max_running_per_caller is null
         or cas_running_tasks_of_caller(coalesce(p_user_id, ''))
            - coalesce(cardinality(array_positions(p_ended_callers, coalesce(p_user_id, ''))), 0)
            < p_max_running_per_caller);
end $$;

-- As 20261207000100_cas_complete_and_claim.sql, with the attempts a completion batch ends
-- (p_ended) counted out of their agents' and callers' running tasks: a batch that ends an agent's
-- last allowed attempt claims its next task. Picked before the ended attempts are written, the
-- claim passed over such tasks, and nothing rang for another claim until the next poll.
drop function if exists cas_pick_claimable(int, text[], int);
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
        select 1 from cas_agents a join cas_agent_status s on s.agent_id = a.id
        where a.id = t.agent_id
          and s.running_tasks - coalesce(cardinality(array_positions(v_ended_agents, t.agent_id)), 0)
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

-- As 20261207000100_cas_complete_and_claim.sql (same arguments, results and lock order). A batch
-- whose completed tasks hand nothing off, with a claim, is written by one cas_write_attempts.
create or replace function cas_complete_and_claim_tasks(
  p_items jsonb,
  p_worker_id text,
  p_limit int,
  p_lease_ms int,
  p_agent_ids text[] default null,
  p_max_running_per_caller int default null
) returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_done uuid[] := cas_lock_completions(p_items);
  v_picked uuid[] := cas_pick_claimable(p_limit, p_agent_ids, p_max_running_per_caller, v_done);
  v_durations double precision[];
  -- Some completed task has a parent or a workflow: each ends alone, with its hand-off.
  v_hands_off boolean := false;
begin
  if v_done is not null then
    v_hands_off := cas_lock_parents(v_done);
  end if;
  if v_done is not null or v_picked is not null then
    perform cas_lock_agent_status(coalesce(v_done, '{}') || coalesce(v_picked, '{}'));
  end if;
  if v_picked is not null and p_max_running_per_caller is not null then
    perform cas_lock_callers(v_picked);
  end if;
  if v_done is not null and v_picked is not null and not v_hands_off then
    v_durations := cas_end_attempts(v_done);
    return query select * from cas_write_attempts(
      v_done, 'succeeded', v_durations, cas_completion_results(v_done, p_items), null, null,
      cas_admissible(v_picked, v_done, p_max_running_per_caller), p_worker_id, p_lease_ms);
    return;
  end if;
  return query select * from cas_finish_completions(v_done, p_items);
  return query select * from cas_admit_claimed(v_picked, p_worker_id, p_lease_ms, p_max_running_per_caller);
end $$;

select cas_restrict_function_access();
