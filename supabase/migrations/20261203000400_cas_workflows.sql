-- Multi-agent workflows: a DAG of steps, each one task of an agent's action (or one task per item
-- of an array: a map step), run in SQL. A step's tasks are queued in the transaction that completes
-- its last dependency (cas_finish_task hands off to cas_workflow_task_ended): no poller between steps.
--
-- A step's input is a JSON template: {"$ref": "input.path"} is the run's input at that path,
-- {"$ref": "stepId.result.path"} an upstream step's result, {"$ref": "item.path"} the element of
-- a map step's array. References are resolved when the step is queued (cas_workflow_resolve).
--
-- Lock order (extending 20261202000100_cas_task_leases.sql and 20261202000600_cas_durable_execution.sql):
--   1. task rows (the task, then its parent: cas_lock_parents);
--   2. workflow run rows, by id (cas_lock_parents takes the runs of the tasks it is given), and under
--      a run's lock its step rows (only writers holding the run row write its steps);
--   3. agent rows: cas_lock_agent_status now takes, besides the tasks' own agents, the agents of
--      every step of their running workflow runs (sorted, once), because the hand-off may queue or
--      cancel tasks of those agents after the task's event was written;
--   4. the event-sequence row, last.
-- After its first event a hand-off takes only locks it already holds, or task rows with SKIP
-- LOCKED (fail_fast cancelling the run's other tasks): a task being ended by another transaction
-- at that instant ends by itself and its own hand-off sees the run finished.
--
-- Redefined here: cas_lock_parents, cas_lock_agent_status, cas_finish_task, cas_list_events
-- (a new p_workflow_run_id argument), and the cas_agent_events_event_type_check constraint (the
-- list of 20261202000600 with 'task_output' of 20261203000200, plus the workflow_* types).

-- Step tasks join the trace of the request that started their run (cas_tasks.trace_parent, from
-- 20261203000300_cas_observability.sql): the insert trigger also reads the run's.
create or replace function cas_inherit_trace_parent() returns trigger
language plpgsql set search_path = public, pg_temp as $$
begin
  if new.parent_id is not null then
    select trace_parent into new.trace_parent from cas_tasks where id = new.parent_id;
  elsif new.workflow_run_id is not null then
    select trace_parent into new.trace_parent from cas_workflow_runs where id = new.workflow_run_id;
  end if;
  return new;
end $$;

-- 1. Tables -----------------------------------------------------------------------------------------

create table if not exists cas_workflow_runs (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  definition jsonb not null,
  input jsonb,
  status text not null default 'running' check (status in ('running', 'succeeded', 'failed', 'cancelled')),
  fail_policy text not null default 'fail_fast' check (fail_policy in ('fail_fast', 'continue')),
  steps_total int not null check (steps_total > 0),
  steps_done int not null default 0 check (steps_done >= 0),
  result jsonb,
  error jsonb,
  user_id text,
  -- W3C traceparent of the request that started the run: its step tasks join that trace.
  trace_parent text check (trace_parent is null or length(trace_parent) <= 256),
  created_at timestamptz not null default now(),
  finished_at timestamptz,
  updated_at timestamptz not null default now()
);
comment on table cas_workflow_runs is
  'One execution of a workflow definition (a DAG of agent steps); steps_done counts steps that '
  'reached a final status, so progress is steps_done / steps_total.';
create index if not exists cas_workflow_runs_status_seq_idx on cas_workflow_runs (status, seq);

create table if not exists cas_workflow_steps (
  run_id uuid not null references cas_workflow_runs (id) on delete cascade,
  step_id text not null check (char_length(step_id) between 1 and 100),
  position int not null,
  agent_id text not null,
  action text not null,
  input jsonb not null default 'null'::jsonb,
  map_ref text,
  depends_on text[] not null default '{}',
  pending_deps int not null default 0 check (pending_deps >= 0),
  status text not null default 'pending'
    check (status in ('pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled')),
  max_attempts int not null default 1 check (max_attempts between 1 and 100),
  timeout_ms int,
  task_id uuid,
  items_total int,
  items_done int not null default 0,
  result jsonb,
  error jsonb,
  started_at timestamptz,
  finished_at timestamptz,
  primary key (run_id, step_id)
);
comment on table cas_workflow_steps is
  'The steps of a workflow run: input is the template ($ref resolved when queued), pending_deps the '
  'dependencies not yet succeeded; a map step (map_ref) has items_total tasks, task_id is null for it.';

alter table cas_tasks add column if not exists workflow_run_id uuid;
alter table cas_tasks add column if not exists workflow_step_id text;
alter table cas_tasks add column if not exists workflow_item int;
comment on column cas_tasks.workflow_run_id is 'The workflow run whose step queued this task; its ending hands off to the run.';
comment on column cas_tasks.workflow_item is 'For a map step: the index of the item this task runs for.';
create index if not exists cas_tasks_workflow_idx on cas_tasks (workflow_run_id, workflow_step_id)
  where workflow_run_id is not null;

alter table cas_agent_events add column if not exists workflow_run_id uuid;
comment on column cas_agent_events.workflow_run_id is 'The workflow run a workflow_* event is about.';
create index if not exists cas_agent_events_workflow_seq_idx on cas_agent_events (workflow_run_id, seq)
  where workflow_run_id is not null;

alter table cas_agent_events drop constraint if exists cas_agent_events_event_type_check;
alter table cas_agent_events add constraint cas_agent_events_event_type_check check (event_type in (
  'agent_registered', 'agent_unregistered', 'task_queued', 'task_started', 'task_progress',
  'task_completed', 'task_failed', 'task_cancel_requested', 'task_cancelled', 'task_retry_scheduled',
  'task_waiting', 'task_resumed', 'task_signal_received', 'step_started', 'step_completed', 'step_failed',
  'state_updated', 'state_reset', 'task_output',
  'workflow_started', 'workflow_step_started', 'workflow_step_succeeded', 'workflow_step_failed',
  'workflow_step_skipped', 'workflow_succeeded', 'workflow_failed', 'workflow_cancelled'));

alter table cas_workflow_runs enable row level security;
alter table cas_workflow_steps enable row level security;

-- 2. Locks (redefined: workflow runs and their agents join the documented order) ---------------------

create or replace function cas_lock_parents(p_task_ids uuid[]) returns void
language plpgsql set search_path = public, pg_temp as $$
begin
  perform 1 from cas_tasks
    where id in (select parent_id from cas_tasks where id = any (p_task_ids) and parent_id is not null)
    order by depth desc, id
    for update;
  -- Right after task rows: the workflow runs these tasks belong to (their endings hand off to them).
  perform 1 from cas_workflow_runs
    where id in (select workflow_run_id from cas_tasks where id = any (p_task_ids) and workflow_run_id is not null)
    order by id
    for update;
end $$;

create or replace function cas_lock_agent_status(p_task_ids uuid[]) returns void
language plpgsql set search_path = public, pg_temp as $$
begin
  -- The tasks' agents and, for tasks of running workflows, the agents of every step of the run:
  -- the hand-off queues (or cancels) their tasks after the first event.
  perform 1 from cas_agents
    where id in (select agent_id from cas_tasks where id = any (p_task_ids)
                 union
                 select s.agent_id from cas_workflow_steps s
                 join cas_workflow_runs r on r.id = s.run_id and r.status = 'running'
                 where s.run_id in (select workflow_run_id from cas_tasks
                                    where id = any (p_task_ids) and workflow_run_id is not null))
    order by id
    for key share;
  perform 1 from cas_agent_status
    where agent_id in (select agent_id from cas_tasks where id = any (p_task_ids)
                       union
                       select s.agent_id from cas_workflow_steps s
                       join cas_workflow_runs r on r.id = s.run_id and r.status = 'running'
                       where s.run_id in (select workflow_run_id from cas_tasks
                                          where id = any (p_task_ids) and workflow_run_id is not null))
    order by agent_id
    for no key update;
end $$;

-- Locks the agents of a definition's steps (cas_agents key share, then cas_agent_status), refusing
-- unknown (CASNF) and stopped (CASCF) agents.
create or replace function cas_workflow_lock_agents(p_agent_ids text[]) returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_agent record;
begin
  perform 1 from cas_agents where id = any (p_agent_ids) order by id for key share;
  for v_agent in
    select a.id, s.status from unnest(p_agent_ids) as a(id)
    left join cas_agent_status s on s.agent_id = a.id
    group by a.id, s.status order by a.id
  loop
    if v_agent.status is null then
      perform cas_raise_not_found('agent', v_agent.id);
    elsif v_agent.status = 'stopped' then
      perform cas_raise_conflict(format('agent "%s" is stopped and does not accept tasks', v_agent.id));
    end if;
  end loop;
  perform 1 from cas_agent_status where agent_id = any (p_agent_ids) order by agent_id for no key update;
end $$;

-- 3. Events -----------------------------------------------------------------------------------------

-- Appends a workflow event: cas_append_event's row, tagged with its run (workflow streams read by it).
create or replace function cas_append_workflow_event(
  p_type text,
  p_run_id uuid,
  p_payload jsonb default '{}'::jsonb,
  p_user_id text default null
) returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_event cas_agent_events;
begin
  v_event := cas_append_event(p_type, null, null,
    coalesce(p_payload, '{}'::jsonb) || jsonb_build_object('workflowRunId', p_run_id), p_user_id);
  update cas_agent_events set workflow_run_id = p_run_id where seq = v_event.seq;
end $$;

drop function if exists cas_list_events(text, uuid, text[], bigint, int);
create or replace function cas_list_events(
  p_agent_id text default null,
  p_task_id uuid default null,
  p_types text[] default null,
  p_after_seq bigint default null,
  p_limit int default 50,
  p_workflow_run_id uuid default null
) returns setof cas_agent_events
language plpgsql stable set search_path = public, pg_temp as $$
begin
  return query execute format(
    'select * from cas_agent_events e where e.seq > $4 %s %s %s %s order by e.seq limit $5',
    case when p_agent_id is not null then 'and e.agent_id = $1' else '' end,
    case when p_task_id is not null then 'and e.task_id = $2' else '' end,
    case when p_types is not null then 'and e.event_type = any ($3)' else '' end,
    case when p_workflow_run_id is not null then 'and e.workflow_run_id = $6' else '' end)
    using p_agent_id, p_task_id, p_types, coalesce(p_after_seq, 0), greatest(p_limit, 0), p_workflow_run_id;
  perform cas_check_cursor('events', p_after_seq);
end $$;

-- 4. References ---------------------------------------------------------------------------------------

-- The value a reference names in p_context = { input, item, steps: { stepId: { result } } }:
-- its first segment is the root ("input", "item" or a step id), the rest a path (array indexes
-- are numbers). JSON null when nothing is there.
create or replace function cas_workflow_ref(p_ref text, p_context jsonb) returns jsonb
language sql immutable set search_path = public, pg_temp as $$
  select coalesce(
    (case split_part(p_ref, '.', 1)
       when 'input' then p_context -> 'input'
       when 'item' then p_context -> 'item'
       else p_context -> 'steps' -> split_part(p_ref, '.', 1) end)
    #> coalesce((string_to_array(p_ref, '.'))[2:], '{}'::text[]),
    'null'::jsonb)
$$;

-- The template with every {"$ref": "..."} object (exactly that one key) replaced by its value.
create or replace function cas_workflow_resolve(p_template jsonb, p_context jsonb) returns jsonb
language plpgsql immutable set search_path = public, pg_temp as $$
begin
  case jsonb_typeof(p_template)
    when 'object' then
      if p_template ? '$ref' and jsonb_typeof(p_template -> '$ref') = 'string'
         and (select count(*) from jsonb_object_keys(p_template)) = 1 then
        return cas_workflow_ref(p_template ->> '$ref', p_context);
      end if;
      return coalesce((select jsonb_object_agg(e.key, cas_workflow_resolve(e.value, p_context))
                       from jsonb_each(p_template) e), '{}'::jsonb);
    when 'array' then
      return coalesce((select jsonb_agg(cas_workflow_resolve(e.value, p_context) order by e.ord)
                       from jsonb_array_elements(p_template) with ordinality as e(value, ord)), '[]'::jsonb);
    else
      return p_template;
  end case;
end $$;

create or replace function cas_workflow_context(p_run_id uuid) returns jsonb
language sql stable set search_path = public, pg_temp as $$
  select jsonb_build_object(
    'input', r.input,
    'steps', coalesce((select jsonb_object_agg(s.step_id, jsonb_build_object('result', s.result))
                       from cas_workflow_steps s where s.run_id = r.id and s.status = 'succeeded'), '{}'::jsonb))
  from cas_workflow_runs r where r.id = p_run_id
$$;

-- 5. Transitions (the caller holds the run row, its agents, and writes events last) ----------------

-- Cancels the run's unfinished tasks (of one step when p_step_id is given) that no other transaction
-- holds; one held is being ended right now and its hand-off finds its step or run already final.
create or replace function cas_workflow_cancel_tasks(p_run_id uuid, p_step_id text, p_reason text)
returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_id uuid;
begin
  for v_id in
    select id from cas_tasks
    where workflow_run_id = p_run_id and (p_step_id is null or workflow_step_id = p_step_id)
      and status in ('queued', 'running', 'waiting')
    order by id
    for update skip locked
  loop
    perform cas_cancel_one(v_id, null, p_reason);
  end loop;
end $$;

create or replace function cas_workflow_step_succeeded(p_run_id uuid, p_step_id text, p_result jsonb)
returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_run cas_workflow_runs;
begin
  update cas_workflow_steps set status = 'succeeded', result = p_result, finished_at = now()
    where run_id = p_run_id and step_id = p_step_id;
  update cas_workflow_steps set pending_deps = pending_deps - 1
    where run_id = p_run_id and p_step_id = any (depends_on) and status = 'pending';
  update cas_workflow_runs set steps_done = steps_done + 1, updated_at = now()
    where id = p_run_id returning * into v_run;
  perform cas_append_workflow_event('workflow_step_succeeded', p_run_id,
    jsonb_build_object('stepId', p_step_id), v_run.user_id);
end $$;

create or replace function cas_workflow_step_failed(p_run_id uuid, p_step_id text, p_error jsonb)
returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_run cas_workflow_runs;
  v_skipped text;
  v_ended int;
begin
  update cas_workflow_steps set status = 'failed', error = p_error, finished_at = now()
    where run_id = p_run_id and step_id = p_step_id;
  update cas_workflow_runs set steps_done = steps_done + 1, updated_at = now()
    where id = p_run_id returning * into v_run;
  perform cas_append_workflow_event('workflow_step_failed', p_run_id,
    jsonb_build_object('stepId', p_step_id, 'error', p_error), v_run.user_id);
  -- The step's other items stop, whatever the policy.
  perform cas_workflow_cancel_tasks(p_run_id, p_step_id, 'workflow_step_failed');
  if v_run.fail_policy = 'fail_fast' then
    perform cas_workflow_cancel_tasks(p_run_id, null, 'workflow_failed');
    update cas_workflow_steps set status = 'cancelled', finished_at = now()
      where run_id = p_run_id and status in ('pending', 'running');
    get diagnostics v_ended = row_count;
    update cas_workflow_runs
      set status = 'failed', steps_done = steps_done + v_ended,
          error = p_error || jsonb_build_object('stepId', p_step_id),
          finished_at = now(), updated_at = now()
      where id = p_run_id returning * into v_run;
    perform cas_append_workflow_event('workflow_failed', p_run_id,
      jsonb_build_object('stepId', p_step_id, 'error', v_run.error), v_run.user_id);
  else
    -- continue: what depends on it (transitively) cannot run; independent branches go on.
    for v_skipped in
      with recursive dependents as (
        select s.step_id from cas_workflow_steps s where s.run_id = p_run_id and p_step_id = any (s.depends_on)
        union
        select s.step_id from cas_workflow_steps s join dependents d on d.step_id = any (s.depends_on)
        where s.run_id = p_run_id
      )
      update cas_workflow_steps s set status = 'skipped', finished_at = now()
        where s.run_id = p_run_id and s.status = 'pending' and s.step_id in (select step_id from dependents)
        returning s.step_id
    loop
      update cas_workflow_runs set steps_done = steps_done + 1, updated_at = now() where id = p_run_id;
      perform cas_append_workflow_event('workflow_step_skipped', p_run_id,
        jsonb_build_object('stepId', v_skipped, 'becauseOf', p_step_id), v_run.user_id);
    end loop;
  end if;
end $$;

-- Queues a step whose dependencies all succeeded: one task, or one per item of its map array.
-- An empty map succeeds at once; a map reference that is not an array fails the step.
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
  v_task cas_tasks;
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
           cas_workflow_resolve(p_step.input, v_context || jsonb_build_object('item', e.value)),
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
  for v_task in
    select * from cas_tasks where workflow_run_id = p_run.id and workflow_step_id = p_step.step_id
    order by workflow_item nulls first
  loop
    perform cas_append_event('task_queued', v_task.agent_id, v_task.id,
      jsonb_build_object('action', v_task.action, 'runAt', v_task.run_at, 'workflowRunId', p_run.id,
                         'stepId', p_step.step_id),
      v_task.user_id);
  end loop;
  if p_step.map_ref is not null and v_count = 0 then
    perform cas_workflow_step_succeeded(p_run.id, p_step.step_id, '[]'::jsonb);
  end if;
end $$;

-- Ends the run when no step can run any more: succeeded when every step did, with the results of
-- the steps nobody depends on; failed otherwise.
create or replace function cas_workflow_finish_if_done(p_run_id uuid) returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_run cas_workflow_runs;
  v_result jsonb;
  v_failed cas_workflow_steps;
begin
  select * into v_run from cas_workflow_runs where id = p_run_id;
  if v_run.status <> 'running'
     or exists (select 1 from cas_workflow_steps where run_id = p_run_id and status in ('pending', 'running')) then
    return;
  end if;
  select coalesce(jsonb_object_agg(s.step_id, s.result), '{}'::jsonb) into v_result
    from cas_workflow_steps s
    where s.run_id = p_run_id and s.status = 'succeeded'
      and not exists (select 1 from cas_workflow_steps d where d.run_id = p_run_id and s.step_id = any (d.depends_on));
  select * into v_failed from cas_workflow_steps
    where run_id = p_run_id and status <> 'succeeded' order by status <> 'failed', position limit 1;
  if v_failed.step_id is null then
    update cas_workflow_runs set status = 'succeeded', result = v_result, finished_at = now(), updated_at = now()
      where id = p_run_id returning * into v_run;
    perform cas_append_workflow_event('workflow_succeeded', p_run_id, '{}'::jsonb, v_run.user_id);
  else
    update cas_workflow_runs
      set status = 'failed', result = v_result,
          error = coalesce(v_failed.error, '{}'::jsonb) || jsonb_build_object('stepId', v_failed.step_id),
          finished_at = now(), updated_at = now()
      where id = p_run_id returning * into v_run;
    perform cas_append_workflow_event('workflow_failed', p_run_id,
      jsonb_build_object('stepId', v_failed.step_id, 'error', v_run.error), v_run.user_id);
  end if;
end $$;

-- Queues every pending step whose dependencies all succeeded (again, while empty maps succeed at
-- once), then ends the run if nothing is left to run.
create or replace function cas_workflow_advance(p_run_id uuid) returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_run cas_workflow_runs;
  v_step cas_workflow_steps;
  v_progressed boolean;
begin
  loop
    v_progressed := false;
    for v_step in
      select * from cas_workflow_steps where run_id = p_run_id and status = 'pending' and pending_deps = 0
      order by position
    loop
      select * into v_run from cas_workflow_runs where id = p_run_id;
      exit when v_run.status <> 'running';
      -- An earlier step of this loop may have failed and skipped or cancelled this one.
      continue when (select status from cas_workflow_steps where run_id = p_run_id and step_id = v_step.step_id) <> 'pending';
      perform cas_workflow_start_step(v_run, v_step);
      v_progressed := true;
    end loop;
    exit when not v_progressed;
  end loop;
  perform cas_workflow_finish_if_done(p_run_id);
end $$;

-- The hand-off: a task of a workflow reached its final status (called at the end of cas_finish_task;
-- the run row and the run's agents are locked by cas_lock_parents and cas_lock_agent_status).
create or replace function cas_workflow_task_ended(p_task cas_tasks) returns void
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
      update cas_workflow_steps set items_done = items_done + 1
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

-- Catches up on workflow tasks that ended without passing through cas_finish_task, so without a
-- hand-off: queued or waiting tasks cancelled by cancelTask (cas_cancel_one), by unregistering their
-- agent, or by a claim that found the agent stopped. Their steps fail as if the task had failed.
-- Task rows (skipping held ones), then runs, then agents, as everywhere; how many were handed off.
create or replace function cas_settle_ended_workflow_tasks(p_limit int default 100) returns int
language plpgsql set search_path = public, pg_temp as $$
declare
  v_ids uuid[];
  v_id uuid;
  v_task cas_tasks;
begin
  select array_agg(ended.id order by ended.id) into v_ids from (
    select t.id from cas_tasks t
    join cas_workflow_steps s on s.run_id = t.workflow_run_id and s.step_id = t.workflow_step_id
    join cas_workflow_runs r on r.id = t.workflow_run_id
    where t.workflow_run_id is not null and t.status in ('failed', 'cancelled')
      and s.status = 'running' and r.status = 'running'
    order by t.id
    limit greatest(p_limit, 0)
    for update of t skip locked
  ) ended;
  if v_ids is null then
    return 0;
  end if;
  perform cas_lock_parents(v_ids);
  perform cas_lock_agent_status(v_ids);
  foreach v_id in array v_ids loop
    select * into v_task from cas_tasks where id = v_id;
    -- Rechecks the run and step under their lock: one hand-off may have ended the others' steps.
    perform cas_workflow_task_ended(v_task);
  end loop;
  return cardinality(v_ids);
end $$;

-- 6. cas_finish_task (redefined from 20261202000600: hands off to the task's workflow run) ----------

create or replace function cas_finish_task(
  p_task cas_tasks,
  p_status text,
  p_duration double precision,
  p_result jsonb,
  p_error jsonb,
  p_payload jsonb
) returns cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks;
begin
  update cas_tasks
    set status = p_status, result = p_result, error = p_error,
        progress = case when p_status = 'succeeded' then 1 else progress end,
        finished_at = clock_timestamp(), duration_ms = p_duration, worker_id = null,
        lease_token = null, lease_expires_at = null, waiting_for = null, updated_at = now()
    where id = p_task.id
    returning * into v_task;
  perform cas_append_event(
    case p_status when 'succeeded' then 'task_completed' when 'failed' then 'task_failed' else 'task_cancelled' end,
    v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', v_task.attempts, 'durationMs', p_duration) || coalesce(p_payload, '{}'::jsonb),
    null);
  perform cas_settle_child(v_task);
  if v_task.workflow_run_id is not null then
    perform cas_workflow_task_ended(v_task);
  end if;
  return v_task;
end $$;

-- 7. Starting and cancelling runs ---------------------------------------------------------------------

-- Starts a run of a validated definition ({ steps: [{ id, agentId, action, input, dependsOn, map,
-- maxAttempts, timeoutMs }] }): the run, its steps, and the tasks of the steps without dependencies.
create or replace function cas_start_workflow(
  p_definition jsonb,
  p_input jsonb default null,
  p_fail_policy text default 'fail_fast',
  p_user_id text default null,
  p_trace_parent text default null
) returns setof cas_workflow_runs
language plpgsql set search_path = public, pg_temp as $$
declare
  v_run cas_workflow_runs;
  v_steps jsonb := p_definition -> 'steps';
begin
  if jsonb_typeof(v_steps) <> 'array' or jsonb_array_length(v_steps) = 0 then
    raise exception using errcode = 'CASBI', message = 'a workflow needs at least one step';
  end if;
  -- No task or run row is locked yet; agent rows before the first event.
  perform cas_workflow_lock_agents(array(select distinct s ->> 'agentId' from jsonb_array_elements(v_steps) s));
  insert into cas_workflow_runs (definition, input, fail_policy, steps_total, user_id, trace_parent)
    values (p_definition, p_input, coalesce(p_fail_policy, 'fail_fast'), jsonb_array_length(v_steps), p_user_id,
            p_trace_parent)
    returning * into v_run;
  insert into cas_workflow_steps (run_id, step_id, position, agent_id, action, input, map_ref, depends_on,
                                  pending_deps, max_attempts, timeout_ms)
    select v_run.id, e.s ->> 'id', (e.ord - 1)::int, e.s ->> 'agentId', e.s ->> 'action',
           coalesce(e.s -> 'input', 'null'::jsonb), e.s ->> 'map',
           coalesce(array(select jsonb_array_elements_text(coalesce(e.s -> 'dependsOn', '[]'::jsonb))), '{}'),
           coalesce(jsonb_array_length(coalesce(e.s -> 'dependsOn', '[]'::jsonb)), 0),
           coalesce((e.s ->> 'maxAttempts')::int, 1), (e.s ->> 'timeoutMs')::int
    from jsonb_array_elements(v_steps) with ordinality as e(s, ord);
  perform cas_append_workflow_event('workflow_started', v_run.id,
    jsonb_build_object('stepsTotal', v_run.steps_total, 'failPolicy', v_run.fail_policy), p_user_id);
  perform cas_workflow_advance(v_run.id);
  return query select * from cas_workflow_runs where id = v_run.id;
end $$;

-- Cancels a run: its unfinished tasks (queued ones at once, running ones by request to their
-- workers), its pending and running steps, the run. A finished run is returned unchanged.
create or replace function cas_cancel_workflow_run(p_id uuid, p_user_id text default null)
returns setof cas_workflow_runs
language plpgsql set search_path = public, pg_temp as $$
declare
  v_run cas_workflow_runs;
  v_ids uuid[];
  v_id uuid;
  v_ended int;
begin
  -- Task rows first, then the run row.
  select array_agg(id order by id) into v_ids from (
    select id from cas_tasks where workflow_run_id = p_id and status in ('queued', 'running', 'waiting')
    order by id for update
  ) open_tasks;
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
  perform cas_lock_agent_status(coalesce(v_ids, '{}'));
  foreach v_id in array coalesce(v_ids, '{}') loop
    perform cas_cancel_one(v_id, p_user_id, 'workflow_cancelled');
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

-- 8. Reads ----------------------------------------------------------------------------------------------

create or replace function cas_get_workflow_runs(p_ids uuid[]) returns setof cas_workflow_runs
language sql stable set search_path = public, pg_temp as $$
  select * from cas_workflow_runs where id = any (p_ids)
$$;

-- Runs newest first, after the run with seq p_after (a page's cursor), optionally of one status and
-- only those one caller started (p_created_by; runs started without a caller match none).
create or replace function cas_list_workflow_runs(
  p_status text default null,
  p_after bigint default null,
  p_limit int default 50,
  p_created_by text default null
) returns setof cas_workflow_runs
language sql stable set search_path = public, pg_temp as $$
  select * from cas_workflow_runs
  where (p_status is null or status = p_status) and (p_after is null or seq < p_after)
    and (p_created_by is null or user_id = p_created_by)
  order by seq desc
  limit greatest(p_limit, 0)
$$;

create or replace function cas_workflow_steps_of(p_run_ids uuid[]) returns setof cas_workflow_steps
language sql stable set search_path = public, pg_temp as $$
  select * from cas_workflow_steps where run_id = any (p_run_ids) order by run_id, position
$$;

-- 9. Row-level security: signed-in users read their own runs and their steps (as for tasks) -------

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'authenticated')
     and to_regprocedure('auth.uid()') is not null then
    drop policy if exists "authenticated reads own workflow runs" on cas_workflow_runs;
    create policy "authenticated reads own workflow runs" on cas_workflow_runs for select to authenticated
      using (user_id = (select auth.uid())::text);
    drop policy if exists "authenticated reads steps of own workflow runs" on cas_workflow_steps;
    create policy "authenticated reads steps of own workflow runs" on cas_workflow_steps for select to authenticated
      using (run_id in (select r.id from cas_workflow_runs r where r.user_id = (select auth.uid())::text));
  end if;
end $$;

-- Retention (CAS_RETENTION_DAYS, called by the workers' retention after cas_prune_history): runs that
-- finished before the cutoff, with their steps (cascade), oldest first, a batch at a time, passing
-- over runs another transaction holds. Locks run rows only. Their tasks go with the task history.
create index if not exists cas_workflow_runs_finished_idx on cas_workflow_runs (finished_at)
  where finished_at is not null;

create or replace function cas_prune_workflow_runs(p_retention_days int, p_batch_size int default 500)
returns int
language plpgsql set search_path = public, pg_temp as $$
declare
  v_deleted int;
begin
  if p_retention_days is null or p_retention_days < 1 then
    raise exception using errcode = 'CASBI', message = 'retention days must be at least 1';
  end if;
  with old as (
    select id from cas_workflow_runs
    where finished_at < now() - make_interval(days => p_retention_days)
    order by finished_at
    limit greatest(p_batch_size, 0)
    for update skip locked
  )
  delete from cas_workflow_runs r using old where r.id = old.id;
  get diagnostics v_deleted = row_count;
  return v_deleted;
end $$;

drop trigger if exists cas_tasks_inherit_trace_parent on cas_tasks;
create trigger cas_tasks_inherit_trace_parent before insert on cas_tasks
  for each row when (new.trace_parent is null and (new.parent_id is not null or new.workflow_run_id is not null))
  execute function cas_inherit_trace_parent();

-- 10. Grants: only the owner and the service role call cas_ functions (20261203000300).
select cas_restrict_function_access();
