-- Completion batches and claims reach their tasks by id, whatever the table's history.
--
-- An update of a task is never HOT (its status is indexed), so it writes new entries in the task
-- indexes and leaves the old ones until vacuum: the entries of status 'running', say, include one
-- for every attempt since the last vacuum, and the planner's statistics do not count them.
-- cas_lock_completions joined the batch's items to cas_tasks on id and status = 'running', and its
-- generic plan (it cannot see how many items come) read that whole range with a bitmap scan, then
-- joined the items to it: a worker draining a backlog scanned more of it with each batch. Measured
-- on a serial complete-and-claim loop of 10 tasks per batch (perf on the backend): a quarter of the
-- backend's CPU, and 9 ms for one batch once 38,000 attempts had run since the last vacuum. The
-- statements that find a batch's parents, workflow runs and agents had the same shape (a condition on
-- parent_id or workflow_run_id that a partial index matches); so did the one that finds a claim's
-- resumed tasks, rewritten with it in 20261208000300_cas_one_write_per_batch.sql, and a heartbeat's.
--
-- Now each of them first reads the tasks by primary key alone, in a subquery the planner cannot
-- merge with the rest (OFFSET 0, or a row lock), and applies its other conditions to those rows.
-- Lock order and results are unchanged. test/runtime/leases.test.ts counts the index scans.

-- As 20261207000100_cas_complete_and_claim.sql: locks the batch's tasks (by id, in the lock order),
-- then keeps those whose lease is still current. A task whose attempt was swept meanwhile is locked
-- too (held to the commit, written by nobody here).
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
    select t.id, t.depth, t.status, t.lease_token from cas_tasks t
    where t.id = any (array(select i.id from jsonb_to_recordset(p_items) as i(id uuid)))
    order by t.depth desc, t.id
    offset 0 -- keeps the conditions below out of this scan
    for update of t
  ) locked
  where locked.status = 'running'
    and exists (select 1 from jsonb_to_recordset(p_items) as i(id uuid, "leaseToken" uuid)
                where i.id = locked.id and i."leaseToken" = locked.lease_token);
  return v_ids;
end $$;

-- As 20261203000400_cas_workflows.sql: the tasks' parents, deepest first, then their
-- workflow runs. Returns whether any of the tasks has a parent or a workflow (their endings hand
-- off to them; 20261208000300_cas_one_write_per_batch.sql writes a batch without any in one go).
drop function if exists cas_lock_parents(uuid[]);
create function cas_lock_parents(p_task_ids uuid[]) returns boolean
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_parent_ids uuid[];
  v_run_ids uuid[];
begin
  select array_agg(t.parent_id) filter (where t.parent_id is not null),
         array_agg(t.workflow_run_id) filter (where t.workflow_run_id is not null)
    into v_parent_ids, v_run_ids
    from (select parent_id, workflow_run_id from cas_tasks where id = any (p_task_ids) offset 0) t;
  if v_parent_ids is not null then
    perform 1 from cas_tasks where id = any (v_parent_ids) order by depth desc, id for update;
  end if;
  -- Right after task rows: the workflow runs these tasks belong to (their endings hand off to them).
  if v_run_ids is not null then
    perform 1 from cas_workflow_runs where id = any (v_run_ids) order by id for update;
  end if;
  return v_parent_ids is not null or v_run_ids is not null;
end $$;

-- As 20261203000400_cas_workflows.sql: the tasks' agents and, for tasks of running
-- workflows, the agents of every step of the run (the hand-off queues or cancels their tasks after
-- the first event), sorted by id, key-share on cas_agents then the status rows.
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
  perform 1 from cas_agent_status where agent_id = any (v_agent_ids) order by agent_id for no key update;
end $$;

-- As 20261206000100_cas_heartbeat_lock_order.sql, without `status = 'running'` beside the ids: a
-- current lease token implies it (cas_tasks_lease_token_check: a task holds a token exactly while
-- it runs), and that condition had the planner walk the index of running tasks for every heartbeat.
create or replace function cas_extend_lease(p_task_ids uuid[], p_lease_tokens uuid[], p_lease_ms int)
returns setof cas_tasks
language sql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
  with held as materialized (
    select t.id from cas_tasks t
    join unnest(p_task_ids, p_lease_tokens) as h(id, lease_token) on h.id = t.id
    where t.lease_token = h.lease_token
    for no key update of t skip locked
  ), renewed as (
    update cas_tasks t set lease_expires_at = now() + make_interval(secs => p_lease_ms / 1000.0)
    from held
    where t.id = held.id
    returning t.*
  )
  select * from renewed
  union all
  select t.* from cas_tasks t
  join unnest(p_task_ids, p_lease_tokens) as h(id, lease_token) on h.id = t.id
  where t.lease_token = h.lease_token
    and t.id not in (select id from held)
$$;

select cas_restrict_function_access();
