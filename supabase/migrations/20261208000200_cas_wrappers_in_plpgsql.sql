-- The one-row wrappers of the set-wise writers are PL/pgSQL, so their statement is planned once per
-- connection instead of at every call.
--
-- A SQL-language function that is not inlined (these set search_path) parses, analyses and plans its
-- body whenever the calling statement starts; called from PL/pgSQL, that is every call. Every
-- enqueue appends its task_queued event through cas_append_event: perf on a backend running
-- enqueues back to back put about a tenth of its CPU in planning that one-line body. PL/pgSQL keeps
-- the plan of its statement for the session. Same signatures, defaults and results.

create or replace function cas_append_event(
  p_type text,
  p_agent_id text,
  p_task_id uuid,
  p_payload jsonb default '{}'::jsonb,
  p_user_id text default null
) returns cas_agent_events
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_event cas_agent_events;
begin
  select * into v_event
    from cas_append_events(array[p_type], array[p_agent_id], array[p_task_id], array[p_payload], array[p_user_id]);
  return v_event;
end $$;

create or replace function cas_end_attempt(p_task cas_tasks) returns double precision
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
  return (cas_end_attempts(array[p_task.id]))[1];
end $$;

create or replace function cas_finish_task(
  p_task cas_tasks,
  p_status text,
  p_duration double precision,
  p_result jsonb,
  p_error jsonb,
  p_payload jsonb
) returns cas_tasks
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_task cas_tasks;
begin
  select * into v_task
    from cas_finish_tasks(array[p_task.id], p_status, array[p_duration], array[p_result], array[p_error],
                          array[p_payload]);
  return v_task;
end $$;

select cas_restrict_function_access();
