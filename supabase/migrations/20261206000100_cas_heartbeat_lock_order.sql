-- A lease heartbeat takes its task rows in the lock order.
--
-- cas_extend_lease renewed a worker's leases with one UPDATE over the ids it was given; an UPDATE
-- locks rows in whatever order its plan meets them (the array's, or the table's). A completion
-- batch of the same worker (cas_complete_tasks, another connection) locks those rows deepest first,
-- then by id, so the two could each hold a row the other waited for: a deadlock, one of them
-- aborted. The heartbeat now locks its rows in that order first (lock order: the header of
-- 20261202000100_cas_task_leases.sql), then renews them. It takes no other row.

create or replace function cas_extend_lease(p_task_ids uuid[], p_lease_tokens uuid[], p_lease_ms int)
returns setof cas_tasks
language sql set search_path = public, pg_temp as $$
  with held as materialized (
    select t.id from cas_tasks t
    join unnest(p_task_ids, p_lease_tokens) as h(id, lease_token) on h.id = t.id
    where t.lease_token = h.lease_token and t.status = 'running'
    order by t.depth desc, t.id
    for no key update of t
  )
  update cas_tasks t set lease_expires_at = now() + make_interval(secs => p_lease_ms / 1000.0)
  from held
  where t.id = held.id
  returning t.*
$$;

select cas_restrict_function_access();
