-- A lease heartbeat never waits for a task row.
--
-- cas_extend_lease renewed a worker's leases with one UPDATE over the ids it was given, waiting for
-- any row another transaction held, in whatever order its plan met them. It deadlocked with a
-- completion batch of the same worker (which locks those rows deepest first, then by id) and, under
-- load, with the lease sweep. A heartbeat has no reason to wait: it now renews the rows it can lock
-- at once (SKIP LOCKED) and reports the others as they stand, unrenewed this time. A row is held
-- only briefly (a completion, a progress write, a sweep), and a lease outlasts three heartbeats:
-- the next one renews it, or finds it gone. Taking no lock it waits for, it adds no lock order.

create or replace function cas_extend_lease(p_task_ids uuid[], p_lease_tokens uuid[], p_lease_ms int)
returns setof cas_tasks
language sql set search_path = public, pg_temp as $$
  with held as materialized (
    select t.id from cas_tasks t
    join unnest(p_task_ids, p_lease_tokens) as h(id, lease_token) on h.id = t.id
    where t.lease_token = h.lease_token and t.status = 'running'
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
  where t.lease_token = h.lease_token and t.status = 'running'
    and t.id not in (select id from held)
$$;

select cas_restrict_function_access();
