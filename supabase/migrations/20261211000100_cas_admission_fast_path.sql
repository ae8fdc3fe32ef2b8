-- A claim admits its picked tasks in one query when no limit applies to them.
--
-- cas_admissible (20261208000300_cas_one_write_per_batch.sql) read each picked task's agent and
-- caller, one query per task, to apply the limits: a stopped agent's task is cancelled, one over
-- its agent's maxConcurrency or its caller's limit stays queued. Most claims meet no limit at all:
-- no per-caller limit is set (CAS_MAX_RUNNING_PER_CALLER=0, the default) and their agents run with
-- no maxConcurrency. One query now finds that out, and then every picked task is admitted, in the
-- order given, as the loop would have done. `pgbench -M prepared`, alternating with the previous
-- function, 3 pairs: admitting ten tasks 0.197 -> 0.129-0.139 ms a call, one task 0.109-0.117 ->
-- 0.096-0.106 ms (round trip included). The loop, unchanged, handles every other case.
--
-- Read under the same locks as the loop (the caller holds the tasks and their agents' rows), so
-- what it sees is what the loop would see. Lock order: unchanged (this takes no lock).
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
  -- No limit can refuse any of them: no per-caller limit, and none of their agents is stopped or
  -- has a maxConcurrency. The loop below would admit every one, in order, at a query per task.
  if p_max_running_per_caller is null and not exists (
      select 1 from cas_tasks t
      join cas_agents a on a.id = t.agent_id
      join cas_agent_status s on s.agent_id = t.agent_id
      where t.id = any (p_ids) and (s.status = 'stopped' or a.max_concurrency is not null)) then
    return p_ids;
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

select cas_restrict_function_access();
