-- A worker writes the completions of its attempts and its next claim in one transaction.
--
-- A worker running no-op tasks alternated two transactions: claim ten, then complete those ten. Each
-- paid a round trip, a commit and its own lock pass over the same agents' rows, and the worker waited
-- for each. cas_complete_and_claim_tasks does both in one call: what the two did, in the one lock
-- order.
--
-- Lock order (docs/architecture.md): task rows, their parents and runs, agents' rows by id, caller
-- locks, the event-sequence row last. Here:
--   1. the completed tasks' rows, waiting for them (cas_lock_completions);
--   2. the claimed tasks' rows, never waiting (SKIP LOCKED: cas_pick_claimable);
--   3. the completed tasks' parents (cas_lock_parents);
--   4. the agents' rows of both, sorted, in one pass (cas_lock_agent_status);
--   5. the claimed tasks' callers (cas_lock_callers);
--   6. the completions are written (the sequence row is taken here), then the claim's attempts
--      begin. Nothing after the sequence row waits: every row the claim writes is held already, and
--      the counter rows are guarded by the agents' rows held since step 4.
-- The claim is admitted after the completions are written, so the running counts it checks
-- (an agent's maxConcurrency, a caller's limit) already count the finished attempts out.
--
-- cas_claim_tasks is the same steps without the completions: one implementation of each part.

-- Locks the tasks of a completion batch whose lease is still current, in the lock order (deepest
-- first, then by id); returns their ids in that order (null for none). An attempt swept meanwhile is
-- left out: its caller completes it alone for the precise CONFLICT.
create or replace function cas_lock_completions(p_items jsonb) returns uuid[]
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_ids uuid[];
begin
  if jsonb_typeof(p_items) is distinct from 'array' then
    raise exception using errcode = 'CASBI', message = 'p_items must be a JSON array';
  end if;
  select array_agg(locked.id order by locked.depth desc, locked.id) into v_ids
  from (
    select t.id, t.depth from cas_tasks t
    join jsonb_to_recordset(p_items) as i(id uuid, "leaseToken" uuid) on i.id = t.id
    where t.status = 'running' and t.lease_token = i."leaseToken"
    order by t.depth desc, t.id
    for update of t
  ) locked;
  return v_ids;
end $$;

-- Completes the tasks cas_lock_completions locked (p_ids in its order) with their results from
-- p_items; the caller holds their parents and their agents' rows. Tasks with neither a parent nor a
-- workflow end together; each of the others alone, in the lock order, so its parent settlement or
-- hand-off sees the tasks before it ended.
create or replace function cas_finish_completions(p_ids uuid[], p_items jsonb) returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_durations double precision[];
  v_group record;
begin
  if p_ids is null then
    return;
  end if;
  v_durations := cas_end_attempts(p_ids);
  for v_group in
    select array_agg(b.id order by b.n) as ids, array_agg(v_durations[b.n] order by b.n) as durations,
           array_agg(r.result order by b.n) as results
    from unnest(p_ids) with ordinality as b(id, n)
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

-- Picks up to p_limit due tasks for a claim and locks them, skipping rows others hold: due queued
-- tasks by priority and due waiting tasks (resumed) by when they came due, the best p_limit of both.
-- Never waits for a lock. Returns their ids in claim order (null for none).
create or replace function cas_pick_claimable(
  p_limit int,
  p_agent_ids text[],
  p_max_running_per_caller int
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
  v_ids uuid[];
begin
  if coalesce(p_limit, 0) <= 0 then
    return null;
  end if;
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
    limit p_limit
    for update of t skip locked
  ), resumed as (
    select t.id, t.priority, t.run_at, t.seq from cas_tasks t
    where t.status = 'waiting' and t.run_at <= now()
      and cas_task_claimable(t.agent_id, t.user_id, p_agent_ids, p_max_running_per_caller)
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

-- Takes the per-caller locks of picked tasks, in key order (only when a per-caller limit applies).
create or replace function cas_lock_callers(p_ids uuid[]) returns void
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_caller_key bigint;
begin
  for v_caller_key in
    select distinct hashtextextended('cas_caller:' || coalesce(user_id, ''), 0) as k
    from cas_tasks where id = any (p_ids) order by k
  loop
    perform pg_advisory_xact_lock(v_caller_key);
  end loop;
end $$;

-- Begins the attempts of picked tasks (p_ids in claim order) that their agent's and caller's limits
-- admit; the caller holds the tasks, their agents' rows and (with a per-caller limit) the callers'
-- locks. A task of an unregistered agent is cancelled; one over a limit stays for a later claim.
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
declare
  v_id uuid;
  v_next record;
  -- The attempts this claim begins, with their agents and callers: counted against the limits of
  -- the tasks after them.
  v_begin uuid[] := '{}';
  v_begin_agents text[] := '{}';
  v_begin_callers text[] := '{}';
begin
  if p_ids is null then
    return;
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
  return query select * from cas_admit_claimed(v_ids, p_worker_id, p_lease_ms, p_max_running_per_caller);
end $$;

-- Completion batches now always go with a claim (cas_complete_and_claim_tasks, with p_limit 0 for
-- none): this one had no caller left.
drop function if exists cas_complete_tasks(jsonb);

-- p_items: [{ "id": uuid, "leaseToken": uuid, "result": json }], completed as a batch, and a claim
-- of up to p_limit due tasks (as cas_claim_tasks), in one transaction, in the lock order of this
-- file's header. Returns the completed tasks (final status) and the claimed ones (running, under
-- this worker's new leases): tell them apart by status. An item whose lease is no longer current is
-- left alone and absent from the result (the caller completes it alone with cas_complete_task,
-- which raises the precise CONFLICT or NOT_FOUND).
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
  v_picked uuid[] := cas_pick_claimable(p_limit, p_agent_ids, p_max_running_per_caller);
begin
  if v_done is not null then
    perform cas_lock_parents(v_done);
  end if;
  if v_done is not null or v_picked is not null then
    perform cas_lock_agent_status(coalesce(v_done, '{}') || coalesce(v_picked, '{}'));
  end if;
  if v_picked is not null and p_max_running_per_caller is not null then
    perform cas_lock_callers(v_picked);
  end if;
  return query select * from cas_finish_completions(v_done, p_items);
  return query select * from cas_admit_claimed(v_picked, p_worker_id, p_lease_ms, p_max_running_per_caller);
end $$;

select cas_restrict_function_access();
