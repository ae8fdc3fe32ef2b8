-- A claim also returns the picked tasks it passed over, so that its worker knows whether to look
-- again at once.
--
-- A worker whose claim came back with fewer tasks than it asked for claimed again at once: the
-- claim may have passed over some of its picked tasks (their agent or caller reached its limit
-- within the claim) and left other due tasks behind. When the pick itself found fewer due tasks
-- than asked for, that second claim can find nothing, and that is the usual case at low load: a
-- woken worker claims the one new task, then claims again for nothing, while the task runs: two
-- claim transactions per task where one does. Measured with executeTask(wait: true) of a no-op,
-- one every 20 ms, against a worker process (8 alternating pairs of 200 tasks): claims per task
-- 2 -> 1, and the p50 from started_at to finished_at lower in 7 of the 8 pairs (by 0.23 ms at the
-- median, of 2.4-3.4 ms).
--
-- Both claims (cas_claim_tasks, and the one a completion batch carries in
-- cas_complete_and_claim_tasks) now return, after the tasks they began (running, in claim order),
-- the picked tasks they did not begin, as they are now (queued or waiting over a limit, cancelled
-- when their agent was stopped), in pick order. The worker looks again at once only after a claim
-- that picked as many as it asked for (runtime/worker.ts); a pick of fewer saw every task due then.
--
-- Lock order: unchanged (task rows, agents' rows sorted, callers, the sequence row last); the
-- passed-over rows are read after everything is written.

-- The picked tasks (p_picked, which the caller holds) that its claim did not begin, as they are
-- now: queued or waiting (over a limit), or cancelled (their agent was stopped); in pick order.
-- p_begun, when the caller knows them: the tasks it began (none passed over when all were).
create or replace function cas_passed_over(p_picked uuid[], p_begun uuid[] default null)
returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
  if p_picked is null or cardinality(p_begun) = cardinality(p_picked) then
    return;
  end if;
  return query
    select t.* from unnest(p_picked) with ordinality as p(id, n)
    join cas_tasks t on t.id = p.id
    where t.status <> 'running'
    order by p.n;
end $$;

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
  perform cas_lock_agent_status(v_ids);
  if p_max_running_per_caller is not null then
    perform cas_lock_callers(v_ids);
  end if;
  v_begun := cas_admissible(v_ids, null, p_max_running_per_caller);
  return query select * from cas_write_attempts(null, null, null, null, null, null,
                                                v_begun, p_worker_id, p_lease_ms);
  return query select * from cas_passed_over(v_ids, v_begun);
end $$;

-- As 20261208000300_cas_one_write_per_batch.sql, its claim's passed-over tasks last.
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
  v_begun uuid[];
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
    v_begun := cas_admissible(v_picked, v_done, p_max_running_per_caller);
    return query select * from cas_write_attempts(
      v_done, 'succeeded', v_durations, cas_completion_results(v_done, p_items), null, null,
      v_begun, p_worker_id, p_lease_ms);
    return query select * from cas_passed_over(v_picked, v_begun);
    return;
  end if;
  return query select * from cas_finish_completions(v_done, p_items);
  return query select * from cas_admit_claimed(v_picked, p_worker_id, p_lease_ms, p_max_running_per_caller);
  return query select * from cas_passed_over(v_picked);
end $$;

select cas_restrict_function_access();
