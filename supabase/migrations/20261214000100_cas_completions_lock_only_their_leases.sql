-- A completion batch locks only the tasks it can complete: those still running under its leases.
--
-- cas_lock_completions locked every task a batch named, in the lock order, then kept those still
-- running under the batch's lease. A stale completion (its attempt was swept back to the queue, and
-- another worker may have claimed the task since) so waited for whoever held that task's row: a
-- claim of another worker, say. A claim may in turn wait for the batch, though it locks with
-- FOR UPDATE SKIP LOCKED: when the version of a row the claim read is being updated by a
-- transaction that commits just as the claim gets to it, PostgreSQL follows the row's update chain
-- and waits, without skipping, for whoever locked the newer version ("while locking updated version
-- of tuple", heap_lock_updated_tuple_rec). A worker's batch and another's claim then each waited for
-- the other: a deadlock, seen once in CI's lock-order stress (test/runtime/leases.test.ts), whose
-- 20 ms leases make stale completions common.
--
-- Now the scan that locks keeps only the tasks whose lease is the batch's, as the statement reads
-- them: a task whose lease changed before the batch began (swept, claimed again) is neither locked
-- nor waited for. A lease that changes while the batch waits for its row is checked again under the
-- lock, as before. The tasks are still read by primary key alone (the lease is compared to each row
-- found, not looked up in an index; see 20261208000100_cas_lock_completions_by_id.sql), and the lock
-- order is unchanged. The database layer also runs a call again when it is a deadlock's victim
-- (src/db/sql-functions.ts), since the engine's wait above stays possible in narrower windows.

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
    select t.id, t.depth, t.status from cas_tasks t
    where t.id = any (array(select i.id from jsonb_to_recordset(p_items) as i(id uuid)))
      and exists (select 1 from jsonb_to_recordset(p_items) as i(id uuid, "leaseToken" uuid)
                  where i.id = t.id and i."leaseToken" = t.lease_token)
    order by t.depth desc, t.id
    offset 0 -- keeps the status condition below out of this scan
    for update of t
  ) locked
  where locked.status = 'running';
  return v_ids;
end $$;

select cas_restrict_function_access();
