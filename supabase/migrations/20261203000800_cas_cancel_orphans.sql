-- Tasks whose parent ended failed or cancelled are cancelled too (reason `parent_cancelled`).
--
-- cancelTask and cancelWorkflowRun cancel a task's descendants in the same transaction. A parent
-- that ends otherwise while children it called are unfinished (its handler threw with a callAll in
-- flight, or a failing workflow cancelled it under FAIL_FAST in a hand-off, which may take no new
-- task locks) left them running for nobody. Workers' periodic sweep now ends them: one level per
-- sweep (grandchildren follow once their parent is final).
--
-- Lock order: the orphans' rows (deepest first, then by id; SKIP LOCKED: one being ended right
-- now is taken by the next sweep), their parents (cas_lock_parents), their agents
-- (cas_lock_agent_status), events last.

create or replace function cas_cancel_orphaned_tasks(p_limit int default 100) returns int
language plpgsql set search_path = public, pg_temp as $$
declare
  v_ids uuid[];
  v_id uuid;
begin
  select array_agg(orphan.id order by orphan.depth, orphan.id) into v_ids from (
    select t.id, t.depth from cas_tasks t
    where t.status in ('queued', 'running', 'waiting') and t.parent_id is not null
      and t.cancel_requested_at is null
      and exists (select 1 from cas_tasks p where p.id = t.parent_id and p.status in ('failed', 'cancelled'))
    order by t.depth desc, t.id
    limit greatest(p_limit, 0)
    for update of t skip locked
  ) orphan;
  if v_ids is null then
    return 0;
  end if;
  perform cas_lock_parents(v_ids);
  perform cas_lock_agent_status(v_ids);
  foreach v_id in array v_ids loop
    perform cas_cancel_one(v_id, null, 'parent_cancelled');
  end loop;
  return cardinality(v_ids);
end $$;

select cas_restrict_function_access();
