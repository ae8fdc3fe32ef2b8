-- The CHECK constraints of the task, event and step tables, each table's in one function.
--
-- PostgreSQL keeps a CHECK constraint as the text of its expression tree and, in every statement
-- that writes the table, reads that text back into a tree, simplifies it and compiles it before the
-- first row is checked (ExecRelCheck: stringToNode, expression_planner, ExecInitExpr). The cost is
-- per statement, not per row, and it grows with the expression: cas_tasks had 15 constraints
-- (12,600 characters of tree) and cas_agent_events one list of 27 event types (5,900). Every
-- enqueue, claim, completion and event append is a statement of its own inside a SQL function, so
-- they paid it every time: in a profile of a 3,000-task drain with perf, ExecConstraints was 14% of
-- PostgreSQL's CPU, and 29% of an enqueue's. A function call in a CHECK is read back in a few
-- hundred characters, and its body is compiled once per connection.
--
-- Each function checks the same rules as the constraints it replaces, in the same order (by
-- name), with the same NULL handling (a rule that is NULL passes), and a broken rule raises the
-- error PostgreSQL raised: SQLSTATE 23514 (check_violation) naming the replaced constraint, so a
-- caller sees what it saw before. The new constraints are added NOT VALID (no scan under the
-- exclusive lock that dropping the old ones takes), then validated: a scan of the existing rows
-- under a lock that lets reads and writes go on.
--
-- Measured: backend CPU of 2,000 enqueues in one statement (a scratch script reading the
-- backend's /proc/<pid>/schedstat), 15 rounds alternating between two copies of one database, one
-- with the constraints as they were: median 507 us per enqueue before, 357 after; least of the 15,
-- 264 before, 185 after (this VM's speed varies by half from minute to minute, so the least is the
-- steadier figure). With no CHECK at all on these tables the least was 182 in an earlier run. A
-- row costs one call to its table's function, about 2 us (its search_path clause included).
--
-- Lock order: unchanged (no function here reads a table).

-- Raises the error PostgreSQL raises for a broken CHECK constraint; never returns. Volatile: the
-- planner folds an immutable call whose arguments are constants, and would raise while planning.
create or replace function cas_check_violation(p_table text, p_constraint text) returns boolean
language plpgsql volatile
set search_path = public, pg_temp
as $$
begin
  raise exception using
    errcode = 'check_violation',
    message = format('new row for relation "%s" violates check constraint "%s"', p_table, p_constraint),
    table = p_table,
    constraint = p_constraint;
end $$;

create or replace function cas_check_task_row(
  p_action text,
  p_attempts int,
  p_max_attempts int,
  p_status text,
  p_finished_at timestamptz,
  p_worker_id text,
  p_depth int,
  p_idempotency_key text,
  p_lease_token uuid,
  p_priority int,
  p_progress double precision,
  p_retry_delay_ms int,
  p_timeout_ms int,
  p_trace_parent text
) returns boolean
language plpgsql immutable
set search_path = public, pg_temp
as $$
declare
  v_broken text := case
    when not (char_length(p_action) between 1 and 100) then 'cas_tasks_action_check'
    when not (p_attempts >= 0) then 'cas_tasks_attempts_check'
    when not (p_attempts <= p_max_attempts) then 'cas_tasks_check'
    when not ((p_status in ('succeeded', 'failed', 'cancelled')) = (p_finished_at is not null)) then 'cas_tasks_check1'
    when not ((p_status = 'running') = (p_worker_id is not null)) then 'cas_tasks_check2'
    when not (p_depth >= 0) then 'cas_tasks_depth_check'
    when not (char_length(p_idempotency_key) between 1 and 200) then 'cas_tasks_idempotency_key_check'
    when not ((p_status = 'running') = (p_lease_token is not null)) then 'cas_tasks_lease_token_check'
    when not (p_max_attempts between 1 and 100) then 'cas_tasks_max_attempts_check'
    when not (p_priority between -1000 and 1000) then 'cas_tasks_priority_check'
    when not (p_progress between 0 and 1) then 'cas_tasks_progress_check'
    when not (p_retry_delay_ms between 0 and 3600000) then 'cas_tasks_retry_delay_ms_check'
    when not (p_status in ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled')) then 'cas_tasks_status_check'
    when not (p_timeout_ms between 1 and 86400000) then 'cas_tasks_timeout_ms_check'
    when not (p_trace_parent is null or length(p_trace_parent) <= 256) then 'cas_tasks_trace_parent_check'
  end;
begin
  return v_broken is null or cas_check_violation('cas_tasks', v_broken);
end $$;

-- The event types; a migration that adds one replaces this function.
create or replace function cas_check_event_row(p_event_type text) returns boolean
language plpgsql immutable
set search_path = public, pg_temp
as $$
begin
  return p_event_type in (
      'agent_registered', 'agent_unregistered',
      'task_queued', 'task_started', 'task_progress', 'task_completed', 'task_failed',
      'task_cancel_requested', 'task_cancelled', 'task_retry_scheduled',
      'task_waiting', 'task_resumed', 'task_signal_received',
      'step_started', 'step_completed', 'step_failed',
      'state_updated', 'state_reset', 'task_output',
      'workflow_started', 'workflow_step_started', 'workflow_step_succeeded', 'workflow_step_failed',
      'workflow_step_skipped', 'workflow_succeeded', 'workflow_failed', 'workflow_cancelled')
    is not false
    or cas_check_violation('cas_agent_events', 'cas_agent_events_event_type_check');
end $$;

create or replace function cas_check_task_step_row(p_kind text, p_status text, p_step_key text)
returns boolean
language plpgsql immutable
set search_path = public, pg_temp
as $$
declare
  v_broken text := case
    when not (p_kind in ('step', 'call', 'sleep', 'signal')) then 'cas_task_steps_kind_check'
    when not (p_status in ('pending', 'completed', 'failed', 'timed_out')) then 'cas_task_steps_status_check'
    when not (char_length(p_step_key) between 1 and 300) then 'cas_task_steps_step_key_check'
  end;
begin
  return v_broken is null or cas_check_violation('cas_task_steps', v_broken);
end $$;

alter table cas_tasks
  drop constraint if exists cas_tasks_action_check,
  drop constraint if exists cas_tasks_attempts_check,
  drop constraint if exists cas_tasks_check,
  drop constraint if exists cas_tasks_check1,
  drop constraint if exists cas_tasks_check2,
  drop constraint if exists cas_tasks_depth_check,
  drop constraint if exists cas_tasks_idempotency_key_check,
  drop constraint if exists cas_tasks_lease_token_check,
  drop constraint if exists cas_tasks_max_attempts_check,
  drop constraint if exists cas_tasks_priority_check,
  drop constraint if exists cas_tasks_progress_check,
  drop constraint if exists cas_tasks_retry_delay_ms_check,
  drop constraint if exists cas_tasks_status_check,
  drop constraint if exists cas_tasks_timeout_ms_check,
  drop constraint if exists cas_tasks_trace_parent_check,
  add constraint cas_tasks_row_check check (cas_check_task_row(
    action, attempts, max_attempts, status, finished_at, worker_id, depth, idempotency_key,
    lease_token, priority, progress, retry_delay_ms, timeout_ms, trace_parent)) not valid;
alter table cas_tasks validate constraint cas_tasks_row_check;

alter table cas_agent_events
  drop constraint if exists cas_agent_events_event_type_check,
  add constraint cas_agent_events_row_check check (cas_check_event_row(event_type)) not valid;
alter table cas_agent_events validate constraint cas_agent_events_row_check;

alter table cas_task_steps
  drop constraint if exists cas_task_steps_kind_check,
  drop constraint if exists cas_task_steps_status_check,
  drop constraint if exists cas_task_steps_step_key_check,
  add constraint cas_task_steps_row_check check (cas_check_task_step_row(kind, status, step_key)) not valid;
alter table cas_task_steps validate constraint cas_task_steps_row_check;

-- A CHECK calls its function as whoever writes the row: the tables' owner, or Supabase's
-- service_role, which cas_restrict_function_access lets call every cas_ function (signed-in users
-- only read, through row-level security).
select cas_restrict_function_access();
