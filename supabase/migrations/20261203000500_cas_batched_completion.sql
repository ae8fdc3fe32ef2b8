-- Completing attempts in batches.
--
-- Every transaction that writes an event holds the event-sequence row (and its agents' status
-- rows) from its first event to its commit, WAL flush included; one completion per transaction
-- made that hold, not the work, the limit on tasks per second. A worker process now writes the
-- completions that end while its previous completion is being written as one transaction
-- (src/domains/task/completion-batcher.ts): the same rows, events and hand-offs as
-- cas_complete_task for each, one lock hold and one commit for all.
--
-- Lock order: the batch's task rows (deepest first, then by id, as cas_expire_leases), their
-- parents and workflow runs (cas_lock_parents), their agents (cas_lock_agent_status), the
-- event-sequence row last (the events of cas_finish_task).

-- p_items: [{ "id": uuid, "leaseToken": uuid, "result": json }]. Returns the tasks it completed;
-- an item whose lease is no longer current is left alone and absent from the result (the caller
-- completes it alone with cas_complete_task, which raises the precise CONFLICT or NOT_FOUND).
create or replace function cas_complete_tasks(p_items jsonb)
returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_ids uuid[];
  v_task cas_tasks;
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
  for v_task in
    select t.* from unnest(v_ids) with ordinality as b(id, ord) join cas_tasks t on t.id = b.id order by b.ord
  loop
    return next cas_finish_task(v_task, 'succeeded', cas_end_attempt(v_task),
      (select i.result from jsonb_to_recordset(p_items) as i(id uuid, result jsonb) where i.id = v_task.id limit 1),
      null, null);
  end loop;
end $$;

-- Claims walk the queue in index order whatever the statistics say. A queue that fills faster
-- than autovacuum analyses it (a burst into an empty table: the planner still thinks it holds a
-- few rows) was scanned whole and sorted on every claim, O(queue length) instead of O(claimed);
-- with sorting priced out, the planner takes the ordered partial indexes
-- (cas_tasks_claim_idx, cas_tasks_waiting_due_idx) and stops at the limit. The prices this puts on
-- the plans would trigger JIT compilation (hundreds of milliseconds per claim): off, too.
alter function cas_claim_tasks(text, int, int, text[], int) set enable_sort = off;
alter function cas_claim_tasks(text, int, int, text[], int) set enable_bitmapscan = off;
alter function cas_claim_tasks(text, int, int, text[], int) set jit = off;

select cas_restrict_function_access();
