-- A claim whose agents have no limit admits its picked tasks without counting them.
--
-- Every claim locked its tasks' agents and their status rows (cas_lock_agent_status: the tasks'
-- agents and workflows read, the agents' rows locked, the status rows of agents with a
-- maxConcurrency locked), then asked cas_admissible whether any limit could refuse one of them
-- (a stopped agent, a maxConcurrency): five statements in two calls, before the claim's UPDATE
-- stamps started_at. With no per-caller limit and no agent of the claim limited, stopped or in a
-- workflow, the most common claim, cas_lock_agents_if_unlimited now does it in three statements in
-- one call, and the claim begins every picked task. Otherwise it returns false and the claim goes
-- on as before.
--
-- Why it is safe: the agents' rows are locked (FOR KEY SHARE) before their limits and status are
-- read, by a later statement that sees what committed while the lock was awaited. Unregistering an
-- agent locks its row FOR UPDATE first, so it cannot stop the agent between that read and the
-- claim's commit. A maxConcurrency set by a registration that commits after that read applies
-- from the next claim on, as before: cas_admissible read it at the same point.
--
-- Lock order: unchanged. The fast path locks the claim's agents in id order, as the first lock of
-- cas_lock_agent_status; when it returns false, cas_lock_agent_status takes the same agents' rows
-- (already held) and then the status rows. A task in a workflow returns false before any lock: its
-- lock set also holds the agents of the workflow's steps.

-- Locks the agents of these tasks (FOR KEY SHARE, in id order) and returns true when no limit can
-- refuse any of the tasks: none of the agents has a maxConcurrency or is stopped. Returns false
-- without locking anything when a task is in a workflow.
create or replace function cas_lock_agents_if_unlimited(p_task_ids uuid[]) returns boolean
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_agent_ids text[];
  v_in_workflow boolean;
begin
  select array_agg(t.agent_id), bool_or(t.workflow_run_id is not null) into v_agent_ids, v_in_workflow
    from (select agent_id, workflow_run_id from cas_tasks where id = any (p_task_ids) offset 0) t;
  if v_in_workflow then
    return false;
  end if;
  perform 1 from cas_agents where id = any (v_agent_ids) order by id for key share;
  return not exists (
    select 1 from cas_agents a join cas_agent_status s on s.agent_id = a.id
    where a.id = any (v_agent_ids) and (a.max_concurrency is not null or s.status = 'stopped'));
end $$;

-- As 20261211000200_cas_claim_reports_passed_over.sql, admitting at once when no limit applies.
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
  v_ids uuid[] := cas_pick_claimable(p_limit, p_agent_ids, p_max_running_per_caller);
  v_begun uuid[];
begin
  if v_ids is null then
    return;
  end if;
  if p_max_running_per_caller is null and cas_lock_agents_if_unlimited(v_ids) then
    v_begun := v_ids;
  else
    perform cas_lock_agent_status(v_ids);
    if p_max_running_per_caller is not null then
      perform cas_lock_callers(v_ids);
    end if;
    v_begun := cas_admissible(v_ids, null, p_max_running_per_caller);
  end if;
  return query select * from cas_write_attempts(null, null, null, null, null, null,
                                                v_begun, p_worker_id, p_lease_ms);
  return query select * from cas_passed_over(v_ids, v_begun);
end $$;

-- As 20261213000100_cas_map_items_end_together.sql, admitting at once when no limit applies.
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
  -- Some completed task has a parent or a workflow: it has a hand-off.
  v_hands_off boolean := false;
  -- No limit can refuse a picked task (cas_lock_agents_if_unlimited).
  v_unlimited boolean := false;
  v_begun uuid[];
  v_together boolean := false;
begin
  if v_done is not null then
    v_hands_off := cas_lock_parents(v_done);
  end if;
  if v_done is not null or v_picked is not null then
    v_unlimited := p_max_running_per_caller is null
      and cas_lock_agents_if_unlimited(coalesce(v_done, '{}') || coalesce(v_picked, '{}'));
    if not v_unlimited then
      perform cas_lock_agent_status(coalesce(v_done, '{}') || coalesce(v_picked, '{}'));
    end if;
  end if;
  if v_picked is not null and p_max_running_per_caller is not null then
    perform cas_lock_callers(v_picked);
  end if;
  -- Written with the claim in one UPDATE: completed tasks without a hand-off, and items of map
  -- steps, whose hand-offs only count them (after the write). Any other hand-off runs alone,
  -- before the claim is written (cas_finish_completions), so that it sees the tasks before it ended.
  if v_done is not null and v_picked is not null then
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
    v_begun := case when v_unlimited then v_picked
                    else cas_admissible(v_picked, v_done, p_max_running_per_caller) end;
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
    return query select * from cas_passed_over(v_picked, v_begun);
    return;
  end if;
  return query select * from cas_finish_completions(v_done, p_items);
  return query select * from cas_admit_claimed(v_picked, p_worker_id, p_lease_ms, p_max_running_per_caller);
  return query select * from cas_passed_over(v_picked);
end $$;

select cas_restrict_function_access();
