-- Heartbeats and lease sweeps take their task rows in the one lock order (deepest first, then by
-- id), as completions do, instead of in whatever order their plans met them.
--
-- Both skip rows others hold (SKIP LOCKED), which was meant to make their order irrelevant. It is
-- not quite: when the row version a statement read is being updated by a transaction that commits
-- just as the statement reaches it, PostgreSQL locks the newer version as well and waits for
-- whoever holds that one, whatever the statement's wait policy ("while locking updated version of
-- tuple"; heap_lock_updated_tuple takes no wait policy). With the stress test's 20 ms leases a
-- heartbeat waited so 36 times a minute, and once in a while for a completion batch that was
-- itself waiting for a row the heartbeat had taken earlier, out of order: a deadlock (CI, once;
-- reproduced in 60 s with deadlock_timeout at 1 ms). Taken in order, a statement that waits holds
-- only rows before the one it waits for, and a completion batch, which locks in the same order,
-- holds none after it: no cycle. The sweep still chooses the leases that expired first; it locks
-- them in the order.

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
    order by t.depth desc, t.id
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

create or replace function cas_expire_leases(p_limit int default 100)
returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
as $$
declare
  v_ids uuid[];
  v_id uuid;
  v_task cas_tasks;
  v_duration double precision;
  v_error jsonb;
begin
  select array_agg(locked.id order by locked.lease_expires_at) into v_ids
  from (
    select t.id, t.lease_expires_at
    from (select id from cas_tasks
          where status = 'running' and lease_expires_at < now()
          order by lease_expires_at
          limit greatest(p_limit, 0)) as expired
    join cas_tasks t on t.id = expired.id
    where t.status = 'running' and t.lease_expires_at < now()
    order by t.depth desc, t.id
    for update of t skip locked
  ) locked;
  if v_ids is null then
    return;
  end if;
  perform cas_lock_parents(v_ids);
  perform cas_lock_agent_status(v_ids);
  foreach v_id in array v_ids loop
    select * into v_task from cas_tasks where id = v_id;
    v_duration := cas_end_attempt(v_task);
    v_error := jsonb_build_object('message', format('worker "%s" stopped renewing its lease', v_task.worker_id),
                                  'code', 'LEASE_EXPIRED', 'retryable', true);
    if v_task.cancel_requested_at is not null then
      return next cas_finish_task(v_task, 'cancelled', v_duration, null, v_task.error,
        jsonb_build_object('reason', 'lease_expired'));
    elsif v_task.attempts < v_task.max_attempts then
      return next cas_requeue_task(v_task, 0, v_task.attempts, v_error,
        jsonb_build_object('reason', 'lease_expired', 'error', v_error));
    else
      return next cas_finish_task(v_task, 'failed', v_duration, null, v_error, jsonb_build_object('error', v_error));
    end if;
  end loop;
end $$;

select cas_restrict_function_access();
