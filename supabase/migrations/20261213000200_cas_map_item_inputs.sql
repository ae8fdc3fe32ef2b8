-- A map step's items are resolved against the run's context without copying it per item.
--
-- Starting a map step resolved each item's input against `context || {item}`: a copy of the whole
-- context, which holds the run's input and so the array being mapped, for every item. Starting a
-- step of N items took time in N squared (1,000 items about 0.1 s, 4,000 about 0.64 s). Now the
-- item is an argument of its own (p_item of cas_workflow_resolve and cas_workflow_ref), and the
-- context is shared by all items.

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

-- As 20261213000100_cas_map_items_end_together.sql, with each item passed to cas_workflow_resolve
-- apart from the context.
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
