-- The items of a map step start and end in set-wise writes.
--
-- A map step over N items ran N times the fixed cost of a task transition where a plain backlog
-- pays it once per batch (bench: 1,000 items at 0.39x the plain tasks' rate):
--   * Starting the step appended each item's task_queued event with its own call, and so updated
--     the event-sequence row once per item in one transaction (each update walks the row's versions
--     that transaction left: 1,000 items took about 0.14 s before the first could start). Now one
--     cas_append_events call appends them all, in item order, as before.
--   * Each item's input was resolved against `context || {item}`: a copy of the whole context, which
--     holds the run's input and so the array being mapped, per item; starting a step of N items took
--     time in N squared (4,000 items about 0.64 s). The item is now an argument of its own (p_item of
--     cas_workflow_resolve and cas_workflow_ref) and the context is shared.
--   * A completion batch ended each task with a parent or a workflow alone (an UPDATE, its events
--     and the counter trigger per task), so that each hand-off sees the tasks before it ended. The
--     items of one map step need not: each one's hand-off only counts it (items_done), and the one
--     that completes the count reads every item's result, all written by then. They now end together,
--     in one write (with the batch's claim, when no other completed task has a hand-off), then one
--     hand-off per step counts them all (cas_hand_off_map_items, cas_workflow_task_ended's p_items).
--     Tasks with a parent, and single-task workflow steps, still end alone.
--
-- Lock order: unchanged (the batch's task rows, their workflow runs, then agents and the
-- event-sequence row); a group's hand-offs take the same rows as the single ones did.

create or replace function cas_finish_completions(p_ids uuid[], p_items jsonb) returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_durations double precision[];
  v_results jsonb[];
  v_group record;
begin
  if p_ids is null then
    return;
  end if;
  v_durations := cas_end_attempts(p_ids);
  v_results := cas_completion_results(p_ids, p_items);
  -- Tasks with neither a parent nor a workflow end together, as do the items of one map step; each
  -- of the others ends alone, so its parent settlement or hand-off sees the tasks before it ended.
  for v_group in
    select array_agg(b.id order by b.n) as ids, array_agg(v_durations[b.n] order by b.n) as durations,
           array_agg(v_results[b.n] order by b.n) as results
    from unnest(p_ids) with ordinality as b(id, n)
    join cas_tasks t on t.id = b.id
    group by case when t.parent_id is null and t.workflow_run_id is null then ''
                  when t.parent_id is null and t.workflow_item is not null
                    then t.workflow_run_id::text || ' ' || t.workflow_step_id
                  else b.n::text end
    order by min(b.n)
  loop
    return query select * from cas_finish_tasks(v_group.ids, 'succeeded', v_group.durations, v_group.results,
                                                null, null);
  end loop;
end $$;

-- The hand-off of succeeded items of map steps, all written: one per step, counting its items
-- (each item's own hand-off would only count it), steps in the order of their first item.
create or replace function cas_hand_off_map_items(p_tasks cas_tasks[]) returns void
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_step record;
begin
  for v_step in
    select min(i.ordinality) as first, count(*)::int as items
    from unnest(p_tasks) with ordinality as i
    group by i.workflow_run_id, i.workflow_step_id
    order by min(i.ordinality)
  loop
    perform cas_workflow_task_ended(p_tasks[v_step.first], v_step.items);
  end loop;
end $$;

-- As 20261208000300_cas_one_write_per_batch.sql, with the succeeded items of map steps handed off
-- once per step, after the others.
create or replace function cas_finish_tasks(
  p_ids uuid[],
  p_status text,
  p_durations double precision[],
  p_results jsonb[],
  p_errors jsonb[],
  p_payloads jsonb[]
) returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  v_task cas_tasks;
  v_items cas_tasks[] := '{}';
begin
  -- The function's rows are all written before the first hand-off runs: each row as the UPDATE
  -- left it.
  for v_task in
    select * from cas_write_attempts(p_ids, p_status, p_durations, p_results, p_errors, p_payloads, null, null, null)
  loop
    perform cas_settle_child(v_task);
    if p_status = 'succeeded' and v_task.workflow_item is not null then
      v_items := v_items || v_task;
    elsif v_task.workflow_run_id is not null then
      perform cas_workflow_task_ended(v_task);
    end if;
    return next v_task;
  end loop;
  if cardinality(v_items) > 0 then
    perform cas_hand_off_map_items(v_items);
  end if;
end $$;

-- As 20261203000400_cas_workflows.sql, counting p_items succeeded items of a map step at once (all
-- of them written, p_task one of them).
drop function cas_workflow_task_ended(cas_tasks);
create function cas_workflow_task_ended(p_task cas_tasks, p_items int default 1) returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_run cas_workflow_runs;
  v_step cas_workflow_steps;
begin
  select * into v_run from cas_workflow_runs where id = p_task.workflow_run_id for update;
  if not found or v_run.status <> 'running' then
    return;
  end if;
  select * into v_step from cas_workflow_steps
    where run_id = v_run.id and step_id = p_task.workflow_step_id;
  if not found or v_step.status <> 'running' then
    return;
  end if;
  if p_task.status = 'succeeded' then
    if v_step.map_ref is null then
      perform cas_workflow_step_succeeded(v_run.id, v_step.step_id, p_task.result);
    else
      update cas_workflow_steps set items_done = items_done + p_items
        where run_id = v_run.id and step_id = v_step.step_id returning * into v_step;
      if v_step.items_done >= v_step.items_total then
        perform cas_workflow_step_succeeded(v_run.id, v_step.step_id,
          (select coalesce(jsonb_agg(coalesce(t.result, 'null'::jsonb) order by t.workflow_item), '[]'::jsonb)
           from cas_tasks t
           where t.workflow_run_id = v_run.id and t.workflow_step_id = v_step.step_id));
      end if;
    end if;
  else
    perform cas_workflow_step_failed(v_run.id, v_step.step_id, jsonb_build_object(
      'message', coalesce(p_task.error ->> 'message', format('task %s was %s', p_task.id, p_task.status)),
      'code', case when p_task.status = 'cancelled' then 'CANCELLED'
                   else coalesce(p_task.error ->> 'code', 'TASK_FAILED') end,
      'taskId', p_task.id,
      'item', p_task.workflow_item));
  end if;
  perform cas_workflow_advance(v_run.id);
end $$;

-- As 20261211000200_cas_claim_reports_passed_over.sql, with a batch whose completed tasks are
-- plain or items of map steps written in one UPDATE with its claim, the items then handed off.
create or replace function cas_complete_and_claim_tasks(
  p_items jsonb,
  p_worker_id text,
  p_limit int,
  p_lease_ms int,
  p_agent_ids text[] default null,
  p_max_running_per_caller int default null
) returns setof cas_tasks
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_done uuid[] := cas_lock_completions(p_items);
  v_picked uuid[] := cas_pick_claimable(p_limit, p_agent_ids, p_max_running_per_caller, v_done);
  v_durations double precision[];
  -- Some completed task has a parent or a workflow: it has a hand-off.
  v_hands_off boolean := false;
  v_begun uuid[];
  v_together boolean := false;
begin
  if v_done is not null then
    v_hands_off := cas_lock_parents(v_done);
  end if;
  if v_done is not null or v_picked is not null then
    perform cas_lock_agent_status(coalesce(v_done, '{}') || coalesce(v_picked, '{}'));
  end if;
  if v_picked is not null and p_max_running_per_caller is not null then
    perform cas_lock_callers(v_picked);
  end if;
  -- Written with the claim in one UPDATE: completed tasks without a hand-off, and items of map
  -- steps, whose hand-offs only count them (after the write). Any other hand-off runs alone,
  -- before the claim is written (cas_finish_completions), so that it sees the tasks before it ended.
  if v_done is not null and v_picked is not null then
    -- Two steps: plain batches, the most common, pay no query for this.
    v_together := not v_hands_off;
    if v_hands_off then
      v_together := not exists (
        select 1 from (select parent_id, workflow_run_id, workflow_item from cas_tasks where id = any (v_done) offset 0) t
        where t.parent_id is not null or (t.workflow_run_id is not null and t.workflow_item is null));
    end if;
  end if;
  if v_together then
    v_durations := cas_end_attempts(v_done);
    v_begun := cas_admissible(v_picked, v_done, p_max_running_per_caller);
    return query select * from cas_write_attempts(
      v_done, 'succeeded', v_durations, cas_completion_results(v_done, p_items), null, null,
      v_begun, p_worker_id, p_lease_ms);
    if v_hands_off then
      -- The batch's completed tasks, all succeeded by this write; those with a hand-off are items.
      perform cas_hand_off_map_items(array(
        select t from cas_tasks t
        where t.id = any (v_done) and t.workflow_item is not null
        order by array_position(v_done, t.id)));
    end if;
    return query select * from cas_passed_over(v_picked, v_begun);
    return;
  end if;
  return query select * from cas_finish_completions(v_done, p_items);
  return query select * from cas_admit_claimed(v_picked, p_worker_id, p_lease_ms, p_max_running_per_caller);
  return query select * from cas_passed_over(v_picked);
end $$;

drop function cas_workflow_resolve(jsonb, jsonb);
drop function cas_workflow_ref(text, jsonb);

-- The value a reference names in p_context = { input, steps: { stepId: { result } } } or, for the
-- root "item", p_item (a map step's item; SQL null elsewhere): its first segment is the root
-- ("input", "item" or a step id), the rest a path (array indexes are numbers). JSON null when
-- nothing is there.
create function cas_workflow_ref(p_ref text, p_context jsonb, p_item jsonb default null) returns jsonb
language sql immutable set search_path = public, pg_temp as $$
  select coalesce(
    (case split_part(p_ref, '.', 1)
       when 'input' then p_context -> 'input'
       when 'item' then p_item
       else p_context -> 'steps' -> split_part(p_ref, '.', 1) end)
    #> coalesce((string_to_array(p_ref, '.'))[2:], '{}'::text[]),
    'null'::jsonb)
$$;

-- The template with every {"$ref": "..."} object (exactly that one key) replaced by its value.
create function cas_workflow_resolve(p_template jsonb, p_context jsonb, p_item jsonb default null) returns jsonb
language plpgsql immutable set search_path = public, pg_temp as $$
begin
  case jsonb_typeof(p_template)
    when 'object' then
      if p_template ? '$ref' and jsonb_typeof(p_template -> '$ref') = 'string'
         and (select count(*) from jsonb_object_keys(p_template)) = 1 then
        return cas_workflow_ref(p_template ->> '$ref', p_context, p_item);
      end if;
      return coalesce((select jsonb_object_agg(e.key, cas_workflow_resolve(e.value, p_context, p_item))
                       from jsonb_each(p_template) e), '{}'::jsonb);
    when 'array' then
      return coalesce((select jsonb_agg(cas_workflow_resolve(e.value, p_context, p_item) order by e.ord)
                       from jsonb_array_elements(p_template) with ordinality as e(value, ord)), '[]'::jsonb);
    else
      return p_template;
  end case;
end $$;

-- As 20261203000400_cas_workflows.sql, with the items' task_queued events appended in one call and
-- each item passed to cas_workflow_resolve apart from the context.
create or replace function cas_workflow_start_step(p_run cas_workflow_runs, p_step cas_workflow_steps)
returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  -- Most items a map step may fan out to in one run.
  c_max_items constant int := 10000;
  v_context jsonb := cas_workflow_context(p_run.id);
  v_items jsonb;
  v_count int;
  v_agent_status text;
  v_task_id uuid;
begin
  select status into v_agent_status from cas_agent_status where agent_id = p_step.agent_id;
  if v_agent_status is null or v_agent_status = 'stopped' then
    perform cas_workflow_step_failed(p_run.id, p_step.step_id, jsonb_build_object(
      'message', format('agent "%s" is stopped and does not accept tasks', p_step.agent_id), 'code', 'AGENT_STOPPED'));
    return;
  end if;
  if p_step.map_ref is not null then
    v_items := cas_workflow_ref(p_step.map_ref, v_context);
    if jsonb_typeof(v_items) <> 'array' then
      perform cas_workflow_step_failed(p_run.id, p_step.step_id, jsonb_build_object(
        'message', format('map "%s" is %s, not an array', p_step.map_ref, jsonb_typeof(v_items)),
        'code', 'MAP_NOT_ARRAY'));
      return;
    end if;
    v_count := jsonb_array_length(v_items);
    if v_count > c_max_items then
      perform cas_workflow_step_failed(p_run.id, p_step.step_id, jsonb_build_object(
        'message', format('map "%s" has %s items; at most %s are allowed', p_step.map_ref, v_count, c_max_items),
        'code', 'MAP_TOO_LARGE'));
      return;
    end if;
  else
    v_items := jsonb_build_array(null);
  end if;

  insert into cas_tasks (agent_id, action, input, max_attempts, timeout_ms, user_id,
                         workflow_run_id, workflow_step_id, workflow_item)
    select p_step.agent_id, p_step.action,
           cas_workflow_resolve(p_step.input, v_context, e.value),
           p_step.max_attempts, p_step.timeout_ms, p_run.user_id, p_run.id, p_step.step_id,
           case when p_step.map_ref is not null then (e.ord - 1)::int end
    from jsonb_array_elements(v_items) with ordinality as e(value, ord)
    order by e.ord;
  select id into v_task_id from cas_tasks
    where workflow_run_id = p_run.id and workflow_step_id = p_step.step_id and p_step.map_ref is null;
  update cas_workflow_steps
    set status = 'running', started_at = now(), task_id = v_task_id,
        items_total = case when p_step.map_ref is not null then v_count end
    where run_id = p_run.id and step_id = p_step.step_id;

  perform cas_append_workflow_event('workflow_step_started', p_run.id,
    jsonb_build_object('stepId', p_step.step_id, 'agentId', p_step.agent_id, 'action', p_step.action,
                       'taskId', v_task_id, 'items', case when p_step.map_ref is not null then v_count end),
    p_run.user_id);
  -- One append for all the step's tasks (one event-sequence update), in item order.
  perform cas_append_events(
    array_agg('task_queued'::text order by t.workflow_item nulls first),
    array_agg(t.agent_id order by t.workflow_item nulls first),
    array_agg(t.id order by t.workflow_item nulls first),
    array_agg(jsonb_build_object('action', t.action, 'runAt', t.run_at, 'workflowRunId', p_run.id,
                                 'stepId', p_step.step_id) order by t.workflow_item nulls first),
    array_agg(t.user_id order by t.workflow_item nulls first))
    from cas_tasks t
    where t.workflow_run_id = p_run.id and t.workflow_step_id = p_step.step_id;
  if p_step.map_ref is not null and v_count = 0 then
    perform cas_workflow_step_succeeded(p_run.id, p_step.step_id, '[]'::jsonb);
  end if;
end $$;

select cas_restrict_function_access();
