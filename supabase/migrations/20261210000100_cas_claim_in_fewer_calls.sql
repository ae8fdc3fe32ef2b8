-- A claim begins its attempts by calling cas_write_attempts itself.
--
-- cas_claim_tasks (20261207000100_cas_complete_and_claim.sql) went through two wrappers on the way
-- to the UPDATE that begins an attempt: cas_admit_claimed, then cas_begin_attempts, each a
-- set-returning PL/pgSQL call of its own (its settings applied and restored, its rows copied into
-- a result set once more). Those calls sit between a task's enqueue and its start: from the
-- claim's first statement to the task row's started_at, 20 ms apart as a woken worker claims one
-- task, they were about a twelfth of it (scratch: 40 claims of one task, median 0.58 -> 0.54 ms,
-- twice each). What is done, and in which order, is unchanged: pick and lock the tasks, lock their
-- agents' rows (and callers), admit, write. The wrappers stay for the other callers.
--
-- Lock order: unchanged (task rows, agents' rows sorted, callers, the sequence row last).
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
begin
  if v_ids is null then
    return;
  end if;
  perform cas_lock_agent_status(v_ids);
  if p_max_running_per_caller is not null then
    perform cas_lock_callers(v_ids);
  end if;
  return query select * from cas_write_attempts(null, null, null, null, null, null,
                                                cas_admissible(v_ids, null, p_max_running_per_caller),
                                                p_worker_id, p_lease_ms);
end $$;
