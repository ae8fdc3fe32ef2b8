-- Cancelling a workflow run also cancels what its step tasks started: the unfinished tasks their
-- handlers queued with ctx.call / ctx.callAll (and theirs, at any depth), as cancelTask does for
-- one task. Before, those children ran on after their run was cancelled.
--
-- Lock order (that of 20261203000400_cas_workflows.sql): task rows first — the descendants and the
-- run's open tasks together, deepest first, then by id (a child before its parent, as
-- cas_cancel_task) — then the run row, then agent rows, then the event-sequence row.
--
-- Redefined here: cas_cancel_workflow_run.

create or replace function cas_cancel_workflow_run(p_id uuid, p_user_id text default null)
returns setof cas_workflow_runs
language plpgsql set search_path = public, pg_temp as $$
declare
  v_run cas_workflow_runs;
  v_ids uuid[];
  v_descendants uuid[];
  v_id uuid;
  v_ended int;
begin
  -- The run's open tasks and their unfinished descendants, deepest first.
  with recursive tree as (
    select id, depth from cas_tasks
    where workflow_run_id = p_id and status in ('queued', 'running', 'waiting')
    union all
    select t.id, t.depth from cas_tasks t join tree on t.parent_id = tree.id
    where t.status in ('queued', 'running', 'waiting')
  )
  select array_agg(id order by depth desc, id) into v_ids from tree;
  perform 1 from cas_tasks where id = any (v_ids) order by depth desc, id for update;
  select * into v_run from cas_workflow_runs where id = p_id for update;
  if not found then
    perform cas_raise_not_found('workflow run', p_id::text);
  end if;
  if v_run.status <> 'running' then
    return next v_run;
    return;
  end if;
  -- Tasks a hand-off queued before this held the run: taken if free (none can be queued now).
  select array_agg(id order by id) into v_ids from (
    select id from cas_tasks
    where workflow_run_id = p_id and status in ('queued', 'running', 'waiting')
    order by id for update skip locked
  ) open_tasks;
  -- Their descendants still unfinished (locked above, or free now).
  with recursive tree as (
    select t.id, t.depth, t.status from cas_tasks t where t.parent_id = any (coalesce(v_ids, '{}'))
    union all
    select t.id, t.depth, t.status from cas_tasks t join tree on t.parent_id = tree.id
  )
  select array_agg(locked.id order by locked.depth, locked.id) into v_descendants from (
    select t.id, t.depth from cas_tasks t
    where t.id in (select id from tree where status in ('queued', 'running', 'waiting'))
    order by t.depth desc, t.id for update skip locked
  ) locked;
  perform cas_lock_agent_status(coalesce(v_ids, '{}') || coalesce(v_descendants, '{}'));
  foreach v_id in array coalesce(v_ids, '{}') loop
    perform cas_cancel_one(v_id, p_user_id, 'workflow_cancelled');
  end loop;
  -- Shallowest first, so a parent is stopping before its children's endings settle it.
  foreach v_id in array coalesce(v_descendants, '{}') loop
    perform cas_cancel_one(v_id, p_user_id, 'parent_cancelled');
  end loop;
  update cas_workflow_steps set status = 'cancelled', finished_at = now()
    where run_id = p_id and status in ('pending', 'running');
  get diagnostics v_ended = row_count;
  update cas_workflow_runs
    set status = 'cancelled', steps_done = steps_done + v_ended, finished_at = now(), updated_at = now()
    where id = p_id returning * into v_run;
  perform cas_append_workflow_event('workflow_cancelled', p_id, '{}'::jsonb, p_user_id);
  return next v_run;
end $$;

select cas_restrict_function_access();
