-- Observability: the trace context a task was queued under, and the queue depth for Prometheus.
--
-- A task carries the W3C `traceparent` of the request (or parent task) that queued it, so the span
-- of each attempt, run by any worker process, joins the trace of that request. Child tasks
-- (ctx.call) inherit their parent's when they are queued without one.
-- Lock order: unchanged (cas_enqueue_task takes the same locks as before, in the same order).

alter table cas_tasks add column if not exists trace_parent text
  check (trace_parent is null or length(trace_parent) <= 256);
comment on column cas_tasks.trace_parent is
  'W3C traceparent of the request or parent task that queued this task (OpenTelemetry); null when tracing was off.';

-- Children queued by cas_call_children (and any future insert without one) join their parent's trace.
create or replace function cas_inherit_trace_parent() returns trigger
language plpgsql set search_path = public, pg_temp as $$
begin
  if new.trace_parent is null and new.parent_id is not null then
    select trace_parent into new.trace_parent from cas_tasks where id = new.parent_id;
  end if;
  return new;
end $$;

drop trigger if exists cas_tasks_inherit_trace_parent on cas_tasks;
create trigger cas_tasks_inherit_trace_parent before insert on cas_tasks
  for each row when (new.parent_id is not null and new.trace_parent is null)
  execute function cas_inherit_trace_parent();

-- A new argument: the old signature goes, so named calls are never ambiguous.
drop function if exists cas_enqueue_task(text, text, jsonb, int, int, int, timestamptz, int, text, text, bigint);

create or replace function cas_enqueue_task(
  p_agent_id text,
  p_action text,
  p_input jsonb default null,
  p_max_attempts int default 1,
  p_timeout_ms int default null,
  p_priority int default 0,
  p_run_at timestamptz default null,
  p_retry_delay_ms int default 1000,
  p_idempotency_key text default null,
  p_user_id text default null,
  p_idempotency_window_ms bigint default 86400000,
  p_trace_parent text default null
) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_status text;
  v_task cas_tasks;
begin
  -- A key is remembered for the window (24 hours by default); after it, the key is free again and
  -- the old task no longer carries it. Task rows first (lock order).
  if p_idempotency_key is not null then
    update cas_tasks set idempotency_key = null, updated_at = now()
      where user_id is not distinct from p_user_id and idempotency_key = p_idempotency_key
        and created_at < now() - make_interval(secs => p_idempotency_window_ms / 1000.0);
  end if;

  -- The agent must stay registered until this task is queued: cas_unregister_agent locks the agent
  -- FOR UPDATE, so it waits for this transaction and then cancels the task, or this waits for it
  -- and the next statement sees the agent stopped.
  perform 1 from cas_agents where id = p_agent_id for key share;
  if not found then
    perform cas_raise_not_found('agent', p_agent_id);
  end if;
  select status into v_status from cas_agent_status where agent_id = p_agent_id;
  if v_status is null or v_status = 'stopped' then
    perform cas_raise_conflict(format('agent "%s" is stopped and does not accept tasks', p_agent_id));
  end if;

  insert into cas_tasks (agent_id, action, input, max_attempts, timeout_ms, priority, run_at,
                         retry_delay_ms, idempotency_key, user_id, trace_parent)
  values (p_agent_id, p_action, p_input, coalesce(p_max_attempts, 1), p_timeout_ms,
          coalesce(p_priority, 0), coalesce(p_run_at, now()), coalesce(p_retry_delay_ms, 1000),
          p_idempotency_key, p_user_id, p_trace_parent)
  on conflict (user_id, idempotency_key) where idempotency_key is not null do nothing
  returning * into v_task;

  if v_task.id is null then
    -- This caller used the key before: the same request gets the same task, any other request is
    -- refused. runAt (a retry moves it) and the trace (each retry is a new request) are not compared.
    select * into v_task from cas_tasks
      where user_id is not distinct from p_user_id and idempotency_key = p_idempotency_key;
    if v_task.agent_id <> p_agent_id or v_task.action <> p_action
       or v_task.input is distinct from p_input
       or v_task.max_attempts <> coalesce(p_max_attempts, 1)
       or v_task.timeout_ms is distinct from p_timeout_ms
       or v_task.priority <> coalesce(p_priority, 0)
       or v_task.retry_delay_ms <> coalesce(p_retry_delay_ms, 1000) then
      perform cas_raise_conflict(format(
        'idempotency key "%s" was used for a different request (task %s)', p_idempotency_key, v_task.id));
    end if;
    return next v_task;
    return;
  end if;

  perform cas_append_event('task_queued', p_agent_id, v_task.id,
    jsonb_build_object('action', p_action, 'runAt', v_task.run_at), p_user_id);
  return next v_task;
end $$;

-- Tasks not yet ended, by agent and status: the queue-depth gauge of GET /metrics. Every registered
-- agent has a row for each status, zero included, so an empty queue reads 0 rather than no data.
create or replace function cas_task_queue_depth()
returns table (agent_id text, status text, count bigint)
language sql stable set search_path = public, pg_temp as $$
  with open_tasks as (
    select t.agent_id, t.status, count(*) as count from cas_tasks t
    where t.status in ('queued', 'running', 'waiting')
    group by t.agent_id, t.status
  )
  select a.id, s.status, coalesce(o.count, 0)
  from cas_agents a
  cross join unnest(array['queued', 'running', 'waiting']) as s(status)
  left join open_tasks o on o.agent_id = a.id and o.status = s.status
  order by a.id, s.status
$$;

-- Access to cas_ functions, as 20261125000400_cas_security.sql set it: only the owner and the
-- service role run them. Later migrations call this once at their end instead of repeating the loop.
create or replace function cas_restrict_function_access() returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_fn regprocedure;
begin
  for v_fn in
    select p.oid::regprocedure from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = current_schema() and p.proname like 'cas\_%'
  loop
    execute format('revoke execute on function %s from public', v_fn);
    if exists (select 1 from pg_roles where rolname = 'anon') then
      execute format('revoke execute on function %s from anon, authenticated', v_fn);
    end if;
    if exists (select 1 from pg_roles where rolname = 'service_role') then
      execute format('grant execute on function %s to service_role', v_fn);
    end if;
  end loop;
end $$;

select cas_restrict_function_access();
