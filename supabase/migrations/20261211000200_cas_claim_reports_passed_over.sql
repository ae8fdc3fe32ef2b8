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
-- The claim now returns, after the tasks it began (running, in claim order), the picked tasks it
-- did not begin, as they are now (queued, or cancelled when their agent was stopped), in pick
-- order. Its worker looks again at once only when the claim picked as many as it asked for
-- (runtime/worker.ts); a pick of fewer saw every task due then.
--
-- Lock order: unchanged (task rows, agents' rows sorted, callers, the sequence row last); the
-- passed-over rows are read after everything is written.
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
  v_admitted uuid[];
begin
  if v_ids is null then
    return;
  end if;
  perform cas_lock_agent_status(v_ids);
  if p_max_running_per_caller is not null then
    perform cas_lock_callers(v_ids);
  end if;
  v_admitted := cas_admissible(v_ids, null, p_max_running_per_caller);
  return query select * from cas_write_attempts(null, null, null, null, null, null,
                                                v_admitted, p_worker_id, p_lease_ms);
  if cardinality(v_admitted) < cardinality(v_ids) then
    return query
      select t.* from unnest(v_ids) with ordinality as p(id, n)
      join cas_tasks t on t.id = p.id
      where not t.id = any (v_admitted)
      order by p.n;
  end if;
end $$;

select cas_restrict_function_access();
