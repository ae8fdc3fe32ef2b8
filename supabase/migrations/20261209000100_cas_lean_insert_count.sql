-- The counters of newly inserted tasks in two statements: a fifth of an enqueue's time went to them.
--
-- cas_count_inserted_tasks gathered seven arrays from the new rows, then called
-- cas_count_task_changes, which locked the agents' rows, summed the deltas and wrote the counters
-- with an UPDATE and an INSERT of the missing ones. An enqueue inserts one queued task: pgbench on
-- `begin; select cas_enqueue_task(...); rollback`, alternating with the previous function,
-- 0.67 -> 0.61 ms (4 pairs). New tasks are queued or waiting, never final, so there is nothing to
-- roll up by hour: their counters are one upsert. A row inserted already final (by hand; the engine
-- never does) still takes the general path, which rolls it up.
--
-- Lock order: unchanged (the agents' rows, sorted, before any counter row; the counter rows in
-- (agent, status) order).

create or replace function cas_count_inserted_tasks() returns trigger
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
  if exists (select 1 from new_tasks n where n.finished_at is not null) then
    perform cas_count_task_changes(
      array_agg(n.agent_id), array_agg(n.status), array_agg(1),
      array_agg(n.agent_id) filter (where n.finished_at is not null),
      array_agg(n.status) filter (where n.finished_at is not null),
      array_agg(n.finished_at) filter (where n.finished_at is not null),
      array_agg(n.duration_ms) filter (where n.finished_at is not null))
    from new_tasks n;
    return null;
  end if;
  perform 1 from cas_agent_status
    where agent_id in (select n.agent_id from new_tasks n)
    order by agent_id for no key update;
  insert into cas_task_counts as c (agent_id, status, tasks)
    select n.agent_id, n.status, count(*) from new_tasks n
    group by n.agent_id, n.status
    order by n.agent_id, n.status
  on conflict (agent_id, status) do update set tasks = c.tasks + excluded.tasks;
  return null;
end $$;
