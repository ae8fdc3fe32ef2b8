-- A worker's batch (cas_complete_and_claim_tasks) runs 20 statements where it ran 25.
--
-- One worker keeps one complete-and-claim transaction in flight, so what a transaction costs
-- whatever its size bounds how fast it drains: about 1.4 ms on the bench machine, of which every
-- statement a PL/pgSQL function runs pays 20-90 µs of executor start-up and every function called
-- with SET options its settings' save and restore. A plain batch (its completed tasks without a
-- parent or a workflow, its claimed ones on agents without a limit) ran 25 statements (the counter
-- trigger's included) in 13 function calls; now 20 in 11:
--   * One statement locks the completed attempts and reads what the rest needs of them: their
--     agents and callers (the claim counts them out of its limits) and whether any has a hand-off.
--     These were three statements in three functions (cas_lock_completions, cas_pick_claimable's
--     first statement, cas_lock_parents); cas_lock_parents now runs only for a batch with a
--     hand-off.
--   * cas_pick_claimable returns the picked tasks' agents and whether any is in a workflow, read by
--     the statement that picks them; cas_lock_agents_if_unlimited takes agent ids instead of
--     reading the tasks again.
--   * cas_write_attempts writes the task rows, reads each begun task's former status (a resumed
--     one counts no new attempt) and gathers their events' arguments in one statement, then
--     returns the rows from what it gathered: it was a statement that found the resumed tasks,
--     the UPDATE, and a third read of the rows after the events were appended.
--
-- Lock order: unchanged. The completed tasks' rows, the picked ones (SKIP LOCKED), the parents'
-- rows and workflow runs (only for a batch with a hand-off, as cas_lock_parents took them before),
-- the agents (FOR KEY SHARE) and status rows, then the event-sequence row, still updated after
-- the task rows' write (a version that updated it first, in one statement with the write, held it
-- longer: three worker processes drained 0.91x as fast).

drop function cas_lock_completions(jsonb);
drop function cas_lock_agents_if_unlimited(uuid[]);
drop function cas_pick_claimable(int, text[], int, uuid[]);

-- Locks the agents (FOR KEY SHARE, in id order) and returns true when no limit can refuse a task
-- of theirs: none of them has a maxConcurrency or is stopped. As the uuid[] version of
-- 20261215000200_cas_claim_unlimited_agents_at_once.sql, whose callers now say themselves whether
-- a task is in a workflow (its lock set also holds the agents of the workflow's steps).
create function cas_lock_agents_if_unlimited(p_agent_ids text[]) returns boolean
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
begin
  perform 1 from cas_agents where id = any (p_agent_ids) order by id for key share;
  -- A later statement than the lock: it sees what committed while the lock was awaited.
  return not exists (
    select 1 from cas_agents a join cas_agent_status s on s.agent_id = a.id
    where a.id = any (p_agent_ids) and (a.max_concurrency is not null or s.status = 'stopped'));
end $$;

-- Up to p_limit claimable tasks, locked (SKIP LOCKED), in claim order: ids, with their agents, and
-- whether any is in a workflow. Null ids when none is due. p_ended_agents and p_ended_callers: the
-- agents and callers ('' for none) of attempts ending in the same transaction, one entry per
-- attempt, counted out of the limits.
create function cas_pick_claimable(
  p_limit int,
  p_agent_ids text[],
  p_max_running_per_caller int,
  p_ended_agents text[] default '{}',
  p_ended_callers text[] default '{}',
  out ids uuid[],
  out agent_ids text[],
  out in_workflow boolean
)
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set enable_sort = off
set enable_bitmapscan = off
set jit = off
set plan_cache_mode = force_generic_plan
as $$
begin
  if coalesce(p_limit, 0) <= 0 then
    return;
  end if;
  with queued as (
    -- cas_task_claimable's condition written out: the hot path of every claim, planned inline.
    select t.id, t.priority, t.run_at, t.seq, t.agent_id, t.workflow_run_id from cas_tasks t
    where t.status = 'queued' and t.run_at <= now()
      and (p_agent_ids is null or t.agent_id = any (p_agent_ids))
      and not exists (
        select 1 from cas_agents a
        where a.id = t.agent_id and a.max_concurrency is not null
          and cas_running_tasks_of_agent(t.agent_id)
              - coalesce(cardinality(array_positions(p_ended_agents, t.agent_id)), 0)
              >= a.max_concurrency)
      and (p_max_running_per_caller is null
           or cas_running_tasks_of_caller(coalesce(t.user_id, ''))
              - coalesce(cardinality(array_positions(p_ended_callers, coalesce(t.user_id, ''))), 0)
              < p_max_running_per_caller)
    order by t.priority desc, t.run_at, t.seq
    limit p_limit
    for update of t skip locked
  ), waiting as (
    select t.id, t.priority, t.run_at, t.seq, t.agent_id, t.workflow_run_id from cas_tasks t
    where t.status = 'waiting' and t.run_at <= now()
      and cas_task_claimable(t.agent_id, t.user_id, p_agent_ids, p_max_running_per_caller,
                             p_ended_agents, p_ended_callers)
    order by t.run_at, t.seq
    limit p_limit
    for update of t skip locked
  )
  select array_agg(picked.id order by picked.priority desc, picked.run_at, picked.seq),
         array_agg(picked.agent_id order by picked.priority desc, picked.run_at, picked.seq),
         coalesce(bool_or(picked.workflow_run_id is not null), false)
    into ids, agent_ids, in_workflow
  from (
    select * from queued union all select * from waiting
    order by priority desc, run_at, seq
    limit p_limit
  ) picked;
end $$;

-- As 20261215000200_cas_claim_unlimited_agents_at_once.sql, with the new cas_pick_claimable.
create or replace function cas_claim_tasks(
  p_worker_id text,
  p_limit int default 1,
  p_lease_ms int default 30000,
  p_agent_ids text[] default null,
  p_max_running_per_caller int default null
) returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_picked record := cas_pick_claimable(p_limit, p_agent_ids, p_max_running_per_caller);
  v_begun uuid[];
begin
  if v_picked.ids is null then
    return;
  end if;
  if p_max_running_per_caller is null and not v_picked.in_workflow
     and cas_lock_agents_if_unlimited(v_picked.agent_ids) then
    v_begun := v_picked.ids;
  else
    perform cas_lock_agent_status(v_picked.ids);
    if p_max_running_per_caller is not null then
      perform cas_lock_callers(v_picked.ids);
    end if;
    v_begun := cas_admissible(v_picked.ids, null, p_max_running_per_caller);
  end if;
  return query select * from cas_write_attempts(null, null, null, null, null, null,
                                                v_begun, p_worker_id, p_lease_ms);
  return query select * from cas_passed_over(v_picked.ids, v_begun);
end $$;

-- As 20261215000200_cas_claim_unlimited_agents_at_once.sql, the completed attempts locked and read
-- by one statement, and cas_lock_parents called only for a batch with a hand-off.
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
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  -- The completed attempts whose lease is current, deepest first, then by id (the order tasks
  -- are locked in); their agents and callers ('' for none).
  v_done uuid[];
  v_done_agents text[] := '{}';
  v_done_callers text[] := '{}';
  -- Some completed task has a parent or a workflow: it has a hand-off.
  v_hands_off boolean := false;
  v_done_in_workflow boolean := false;
  v_picked record;
  v_durations double precision[];
  -- No limit can refuse a picked task (cas_lock_agents_if_unlimited).
  v_unlimited boolean := false;
  v_begun uuid[];
  v_together boolean := false;
begin
  if jsonb_typeof(p_items) is distinct from 'array' then
    raise exception using errcode = 'CASBI', message = 'p_items must be a JSON array';
  end if;
  select array_agg(locked.id order by locked.depth desc, locked.id),
         -- As multisets: the claim counts them out of its limits.
         coalesce(array_agg(locked.agent_id), '{}'),
         coalesce(array_agg(coalesce(locked.user_id, '')), '{}'),
         coalesce(bool_or(locked.parent_id is not null or locked.workflow_run_id is not null),
                  false),
         coalesce(bool_or(locked.workflow_run_id is not null), false)
    into v_done, v_done_agents, v_done_callers, v_hands_off, v_done_in_workflow
  from (
    select t.id, t.depth, t.status, t.agent_id, t.user_id, t.parent_id, t.workflow_run_id
    from cas_tasks t
    where t.id = any (array(select i.id from jsonb_to_recordset(p_items) as i(id uuid)))
      and exists (select 1 from jsonb_to_recordset(p_items) as i(id uuid, "leaseToken" uuid)
                  where i.id = t.id and i."leaseToken" = t.lease_token)
    order by t.depth desc, t.id
    offset 0 -- keeps the status condition below out of this scan
    for update of t
  ) locked
  where locked.status = 'running';
  v_picked := cas_pick_claimable(p_limit, p_agent_ids, p_max_running_per_caller,
                                 v_done_agents, v_done_callers);
  if v_hands_off then
    perform cas_lock_parents(v_done);
  end if;
  if v_done is not null or v_picked.ids is not null then
    v_unlimited := p_max_running_per_caller is null
      and not v_done_in_workflow and not coalesce(v_picked.in_workflow, false)
      and cas_lock_agents_if_unlimited(v_done_agents || coalesce(v_picked.agent_ids, '{}'));
    if not v_unlimited then
      perform cas_lock_agent_status(coalesce(v_done, '{}') || coalesce(v_picked.ids, '{}'));
    end if;
  end if;
  if v_picked.ids is not null and p_max_running_per_caller is not null then
    perform cas_lock_callers(v_picked.ids);
  end if;
  -- Written with the claim in one UPDATE: completed tasks without a hand-off, and items of map
  -- steps, whose hand-offs only count them (after the write). Any other hand-off runs alone,
  -- before the claim is written (cas_finish_completions), so that it sees the tasks before it ended.
  if v_done is not null and v_picked.ids is not null then
    -- Two steps: plain batches, the most common, pay no query for this.
    v_together := not v_hands_off;
    if v_hands_off then
      v_together := not exists (
        select 1 from (select parent_id, workflow_run_id, workflow_item from cas_tasks where id = any (v_done) offset 0) t
        where t.parent_id is not null or (t.workflow_run_id is not null and t.workflow_item is null));
    end if;
  end if;
  if v_together then
    v_durations := cas_end_attempts(v_done);
    v_begun := case when v_unlimited then v_picked.ids
                    else cas_admissible(v_picked.ids, v_done, p_max_running_per_caller) end;
    return query select * from cas_write_attempts(
      v_done, 'succeeded', v_durations, cas_completion_results(v_done, p_items), null, null,
      v_begun, p_worker_id, p_lease_ms);
    if v_hands_off then
      -- The batch's completed tasks, all succeeded by this write; those with a hand-off are items.
      perform cas_hand_off_map_items(array(
        select t from cas_tasks t
        where t.id = any (v_done) and t.workflow_item is not null
        order by array_position(v_done, t.id)));
    end if;
    return query select * from cas_passed_over(v_picked.ids, v_begun);
    return;
  end if;
  return query select * from cas_finish_completions(v_done, p_items);
  return query select * from cas_admit_claimed(v_picked.ids, p_worker_id, p_lease_ms, p_max_running_per_caller);
  return query select * from cas_passed_over(v_picked.ids);
end $$;

-- As 20261208000300_cas_one_write_per_batch.sql, with the rows written, their events' arguments
-- gathered and each begun task's former status read by one statement; the rows are returned from
-- what it gathered instead of a third read of them.
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
set enable_hashjoin = off
set enable_mergejoin = off
as $$
declare
  v_ended int := coalesce(cardinality(p_ended), 0);
  v_rows cas_tasks[];
  v_types text[];
  v_agent_ids text[];
  v_task_ids uuid[];
  v_payloads jsonb[];
begin
  if v_ended + coalesce(cardinality(p_begun), 0) = 0 then
    return;
  end if;
  with attempt as (
    select e.id, e.n, true as ends, e.duration, e.result, e.error, e.payload
    from unnest(p_ended, p_durations, p_results, p_errors, p_payloads)
      with ordinality as e(id, duration, result, error, payload, n)
    union all
    select b.id, v_ended + b.n, false, null, null, null, null
    from unnest(p_begun) with ordinality as b(id, n)
  ), written as (
    update cas_tasks t
      set status = case when w.ends then p_status else 'running' end,
          result = case when w.ends then w.result else t.result end,
          error = case when w.ends then w.error else t.error end,
          progress = case when not w.ends then null when p_status = 'succeeded' then 1 else t.progress end,
          progress_message = case when w.ends then t.progress_message end,
          -- A waiting task resumes its attempt instead of beginning a new one.
          attempts = t.attempts + case when w.ends or w.resumed then 0 else 1 end,
          started_at = case when w.ends then t.started_at else clock_timestamp() end,
          finished_at = case when w.ends then clock_timestamp() else t.finished_at end,
          duration_ms = case when w.ends then w.duration else t.duration_ms end,
          worker_id = case when w.ends then null else p_worker_id end,
          lease_token = case when w.ends then null else gen_random_uuid() end,
          lease_expires_at = case when w.ends then null else now() + make_interval(secs => p_lease_ms / 1000.0) end,
          waiting_for = null,
          updated_at = now()
      from (
        -- Each row as it was before this write, found by id alone
        -- (20261208000100_cas_lock_completions_by_id.sql).
        select a.*, not a.ends and was.status = 'waiting' as resumed
        from attempt a join cas_tasks was on was.id = a.id
      ) w
      where t.id = w.id
      returning t as task, w.n, w.ends, w.duration, w.payload, w.resumed
  )
  select array_agg(x.task order by x.n),
         array_agg(case when not x.ends then 'task_started'
                        when p_status = 'succeeded' then 'task_completed'
                        when p_status = 'failed' then 'task_failed'
                        else 'task_cancelled' end order by x.n),
         array_agg((x.task).agent_id order by x.n),
         array_agg((x.task).id order by x.n),
         array_agg(case when x.ends
                        then jsonb_build_object('attempt', (x.task).attempts, 'durationMs', x.duration)
                             || coalesce(x.payload, '{}'::jsonb)
                        else jsonb_build_object('attempt', (x.task).attempts, 'workerId', p_worker_id,
                                                'resumed', x.resumed) end
                   order by x.n)
    into v_rows, v_types, v_agent_ids, v_task_ids, v_payloads
    from written x;
  -- After the task rows: the event-sequence row is the last lock a transaction takes, and
  -- writers queue on it until they commit.
  perform cas_append_events(v_types, v_agent_ids, v_task_ids, v_payloads);
  return query select * from unnest(v_rows);
end $$;

select cas_restrict_function_access();
