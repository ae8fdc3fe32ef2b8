-- Orphans are cancelled by the workers' periodic sweep: unfinished tasks whose parent ended failed
-- or cancelled (reason `parent_cancelled`), and unfinished tasks of a workflow step that already
-- ended failed, cancelled or skipped (reason `workflow_failed`, `workflow_cancelled` or
-- `workflow_step_failed`, after the run).
--
-- cancelTask and cancelWorkflowRun cancel a task's descendants in the same transaction. A parent
-- that ends otherwise while children it called are unfinished (its handler threw with a callAll in
-- flight, or a failing workflow cancelled it under FAIL_FAST in a hand-off) left them running for
-- nobody. And a hand-off or cancelWorkflowRun cancels the run's other tasks with SKIP LOCKED: a
-- task row locked at that instant, by its own ending but also by a heartbeat or a progress write,
-- was passed over and ran on to its end. The sweep ends both: one level per sweep (grandchildren
-- follow once their parent is final).
--
-- Lock order: the orphans' rows (deepest first, then by id; SKIP LOCKED: one being ended right
-- now is taken by the next sweep), their parents (cas_lock_parents), their agents
-- (cas_lock_agent_status), events last.

create or replace function cas_cancel_orphaned_tasks(p_limit int default 100) returns int
language plpgsql set search_path = public, pg_temp as $$
declare
  v_orphans jsonb;
  v_ids uuid[];
  v_orphan jsonb;
begin
  select jsonb_agg(jsonb_build_object('id', orphan.id, 'reason', orphan.reason) order by orphan.depth, orphan.id),
         array_agg(orphan.id order by orphan.depth, orphan.id)
    into v_orphans, v_ids
  from (
    select t.id, t.depth,
           case
             when exists (select 1 from cas_tasks p where p.id = t.parent_id and p.status in ('failed', 'cancelled'))
               then 'parent_cancelled'
             when r.status = 'failed' then 'workflow_failed'
             when r.status = 'cancelled' then 'workflow_cancelled'
             else 'workflow_step_failed'
           end as reason
    from cas_tasks t
    left join cas_workflow_runs r on r.id = t.workflow_run_id
    where t.status in ('queued', 'running', 'waiting')
      and t.cancel_requested_at is null
      and (
        (t.parent_id is not null
          and exists (select 1 from cas_tasks p where p.id = t.parent_id and p.status in ('failed', 'cancelled')))
        or (t.workflow_run_id is not null
          and exists (select 1 from cas_workflow_steps s
                      where s.run_id = t.workflow_run_id and s.step_id = t.workflow_step_id
                        and s.status in ('failed', 'cancelled', 'skipped'))))
    order by t.depth desc, t.id
    limit greatest(p_limit, 0)
    for update of t skip locked
  ) orphan;
  if v_ids is null then
    return 0;
  end if;
  perform cas_lock_parents(v_ids);
  perform cas_lock_agent_status(v_ids);
  for v_orphan in select * from jsonb_array_elements(v_orphans) loop
    perform cas_cancel_one((v_orphan ->> 'id')::uuid, null, v_orphan ->> 'reason');
  end loop;
  return cardinality(v_ids);
end $$;

select cas_restrict_function_access();
