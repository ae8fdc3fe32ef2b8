-- Tasks: a durable queue. Each transition is one function = one transaction = one event row.

create table if not exists cas_tasks (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  agent_id text not null references cas_agents (id),
  action text not null check (char_length(action) between 1 and 100),
  input jsonb,
  status text not null default 'queued'
    check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  priority int not null default 0 check (priority between -1000 and 1000),
  run_at timestamptz not null default now(),
  attempts int not null default 0 check (attempts >= 0),
  max_attempts int not null default 1 check (max_attempts between 1 and 100),
  timeout_ms int check (timeout_ms between 1 and 86400000),
  retry_delay_ms int not null default 1000 check (retry_delay_ms between 0 and 3600000),
  progress double precision check (progress between 0 and 1),
  progress_message text,
  result jsonb,
  error jsonb,
  idempotency_key text check (char_length(idempotency_key) between 1 and 200),
  worker_id text,
  lease_expires_at timestamptz,
  cancel_requested_at timestamptz,
  user_id text,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  duration_ms double precision,
  updated_at timestamptz not null default now(),
  check (attempts <= max_attempts),
  check ((status in ('succeeded', 'failed', 'cancelled')) = (finished_at is not null)),
  check ((status = 'running') = (worker_id is not null))
);
comment on table cas_tasks is 'Task queue and history. Workers claim queued rows with FOR UPDATE SKIP LOCKED under a lease.';
comment on column cas_tasks.seq is 'Insertion order; the tasks connection pages by it.';
comment on column cas_tasks.retry_delay_ms is 'Base of the exponential backoff between attempts.';
comment on column cas_tasks.duration_ms is 'Wall time of the last attempt, set when the task reaches a final status.';
comment on column cas_tasks.error is '{ message, code, retryable } of the last failed attempt.';

create unique index if not exists cas_tasks_idempotency_key_idx on cas_tasks (idempotency_key)
  where idempotency_key is not null;
create index if not exists cas_tasks_agent_created_idx on cas_tasks (agent_id, created_at);
create index if not exists cas_tasks_agent_seq_idx on cas_tasks (agent_id, seq desc);
create index if not exists cas_tasks_status_seq_idx on cas_tasks (status, seq desc);
create index if not exists cas_tasks_claim_idx on cas_tasks (priority desc, run_at, seq) where status = 'queued';
create index if not exists cas_tasks_lease_idx on cas_tasks (lease_expires_at) where status = 'running';
create index if not exists cas_tasks_agent_finished_idx on cas_tasks (agent_id, finished_at) where finished_at is not null;

create or replace function cas_raise_conflict(p_message text) returns void
language plpgsql as $$
begin
  raise exception using errcode = 'CASCF', message = p_message;
end $$;

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
  p_idempotency_window_ms bigint default 86400000
) returns setof cas_tasks
language plpgsql as $$
declare
  v_status text;
  v_task cas_tasks;
begin
  select status into v_status from cas_agent_status where agent_id = p_agent_id;
  if not found then
    perform cas_raise_not_found('agent', p_agent_id);
  elsif v_status = 'stopped' then
    perform cas_raise_conflict(format('agent "%s" is stopped and does not accept tasks', p_agent_id));
  end if;

  -- A key is remembered for the window (24 hours by default); after it, the key is free again and
  -- the old task no longer carries it.
  if p_idempotency_key is not null then
    update cas_tasks set idempotency_key = null, updated_at = now()
      where idempotency_key = p_idempotency_key
        and created_at < now() - make_interval(secs => p_idempotency_window_ms / 1000.0);
  end if;

  insert into cas_tasks (agent_id, action, input, max_attempts, timeout_ms, priority, run_at,
                         retry_delay_ms, idempotency_key, user_id)
  values (p_agent_id, p_action, p_input, coalesce(p_max_attempts, 1), p_timeout_ms,
          coalesce(p_priority, 0), coalesce(p_run_at, now()), coalesce(p_retry_delay_ms, 1000),
          p_idempotency_key, p_user_id)
  on conflict (idempotency_key) where idempotency_key is not null do nothing
  returning * into v_task;

  if v_task.id is null then
    -- The key was used before: the same request gets the same task, a different one is refused.
    select * into v_task from cas_tasks where idempotency_key = p_idempotency_key;
    if v_task.agent_id <> p_agent_id or v_task.action <> p_action then
      perform cas_raise_conflict(format('idempotency key "%s" belongs to another task', p_idempotency_key));
    end if;
    return next v_task;
    return;
  end if;

  perform cas_append_event('task_queued', p_agent_id, v_task.id,
    jsonb_build_object('action', p_action, 'runAt', v_task.run_at), p_user_id);
  return next v_task;
end $$;

-- Marks one claimed row as running: attempt count, lease, agent status, event.
create or replace function cas_begin_attempt(p_task_id uuid, p_worker_id text, p_lease_ms int)
returns cas_tasks
language plpgsql as $$
declare
  v_task cas_tasks;
begin
  update cas_tasks
    set status = 'running', attempts = attempts + 1, worker_id = p_worker_id,
        lease_expires_at = now() + make_interval(secs => p_lease_ms / 1000.0),
        started_at = clock_timestamp(), progress = null, progress_message = null, updated_at = now()
    where id = p_task_id
    returning * into v_task;
  update cas_agent_status
    set running_tasks = running_tasks + 1,
        status = case when status = 'stopped' then status else 'busy' end,
        last_activity_at = now(), updated_at = now()
    where agent_id = v_task.agent_id;
  perform cas_append_event('task_started', v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', v_task.attempts, 'workerId', p_worker_id), null);
  return v_task;
end $$;

-- Lock order, in every function: task rows, then agent status rows (by agent id), then the event
-- sequence row, which cas_append_event takes last and holds to commit. A function that writes
-- several events therefore locks every row it will touch before its first event.
create or replace function cas_lock_agent_status(p_task_ids uuid[]) returns void
language plpgsql as $$
begin
  perform 1 from cas_agent_status
    where agent_id in (select agent_id from cas_tasks where id = any (p_task_ids))
    order by agent_id
    for update;
end $$;

-- Claims up to p_limit due tasks, highest priority first, skipping rows other workers hold.
create or replace function cas_claim_tasks(
  p_worker_id text,
  p_limit int default 1,
  p_lease_ms int default 30000,
  p_agent_ids text[] default null
) returns setof cas_tasks
language plpgsql as $$
declare
  v_ids uuid[];
  v_id uuid;
begin
  select array_agg(picked.id order by picked.priority desc, picked.run_at, picked.seq) into v_ids
  from (
    select t.id, t.priority, t.run_at, t.seq from cas_tasks t
    where t.status = 'queued' and t.run_at <= now()
      and (p_agent_ids is null or t.agent_id = any (p_agent_ids))
    order by t.priority desc, t.run_at, t.seq
    limit greatest(p_limit, 0)
    for update skip locked
  ) picked;
  if v_ids is null then
    return;
  end if;
  perform cas_lock_agent_status(v_ids);
  foreach v_id in array v_ids loop
    return next cas_begin_attempt(v_id, p_worker_id, p_lease_ms);
  end loop;
end $$;

-- Leaves the running state: frees the agent slot and records the attempt's duration.
create or replace function cas_end_attempt(p_task cas_tasks) returns double precision
language plpgsql as $$
declare
  v_duration double precision := extract(epoch from clock_timestamp() - p_task.started_at) * 1000;
begin
  update cas_agent_status
    set running_tasks = greatest(running_tasks - 1, 0),
        status = case when status = 'stopped' then status
                      when running_tasks - 1 > 0 then 'busy' else 'idle' end,
        last_activity_at = now(), updated_at = now()
    where agent_id = p_task.agent_id;
  insert into cas_metrics_timeseries (agent_id, metric_name, value, tags)
  values (p_task.agent_id, 'task_duration_ms', v_duration,
          jsonb_build_object('action', p_task.action, 'attempt', p_task.attempts));
  return v_duration;
end $$;

-- Locks a running task held by this worker; a lost lease is a conflict the worker must respect.
create or replace function cas_lock_running_task(p_task_id uuid, p_worker_id text) returns cas_tasks
language plpgsql as $$
declare
  v_task cas_tasks;
begin
  select * into v_task from cas_tasks where id = p_task_id for update;
  if not found then
    perform cas_raise_not_found('task', p_task_id::text);
  end if;
  if v_task.status <> 'running' or v_task.worker_id is distinct from p_worker_id then
    perform cas_raise_conflict(format('task "%s" is not running on worker "%s"', p_task_id, p_worker_id));
  end if;
  return v_task;
end $$;

-- Ends a task that was running in a final status, with its event: one shape for every ending.
create or replace function cas_finish_task(
  p_task cas_tasks,
  p_status text,
  p_duration double precision,
  p_result jsonb,
  p_error jsonb,
  p_payload jsonb
) returns cas_tasks
language plpgsql as $$
declare
  v_task cas_tasks;
begin
  update cas_tasks
    set status = p_status, result = p_result, error = p_error,
        progress = case when p_status = 'succeeded' then 1 else progress end,
        finished_at = clock_timestamp(), duration_ms = p_duration, worker_id = null,
        lease_expires_at = null, updated_at = now()
    where id = p_task.id
    returning * into v_task;
  perform cas_append_event(
    case p_status when 'succeeded' then 'task_completed' when 'failed' then 'task_failed' else 'task_cancelled' end,
    v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', v_task.attempts, 'durationMs', p_duration) || coalesce(p_payload, '{}'::jsonb),
    null);
  return v_task;
end $$;

-- Puts a task that was running back in the queue to run after p_delay_ms, with its event.
-- p_attempts is its attempt count from now on (a released attempt does not count).
create or replace function cas_requeue_task(
  p_task cas_tasks,
  p_delay_ms double precision,
  p_attempts int,
  p_error jsonb,
  p_payload jsonb
) returns cas_tasks
language plpgsql as $$
declare
  v_task cas_tasks;
begin
  update cas_tasks
    set status = 'queued', attempts = p_attempts, error = coalesce(p_error, error), worker_id = null,
        lease_expires_at = null, run_at = clock_timestamp() + make_interval(secs => p_delay_ms / 1000.0),
        updated_at = now()
    where id = p_task.id
    returning * into v_task;
  perform cas_append_event('task_retry_scheduled', v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', p_task.attempts, 'delayMs', round(p_delay_ms), 'nextRunAt', v_task.run_at)
      || coalesce(p_payload, '{}'::jsonb),
    null);
  return v_task;
end $$;

create or replace function cas_complete_task(p_task_id uuid, p_worker_id text, p_result jsonb default null)
returns setof cas_tasks
language plpgsql as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_worker_id);
begin
  return next cas_finish_task(v_task, 'succeeded', cas_end_attempt(v_task), p_result, null, null);
end $$;

-- Fails the current attempt. Retryable errors with attempts left go back to the queue after an
-- exponential backoff with jitter (base * 2^(attempt-1), scaled by 0.5..1.0, capped at one hour).
create or replace function cas_fail_task(
  p_task_id uuid,
  p_worker_id text,
  p_error jsonb,
  p_retryable boolean default true
) returns setof cas_tasks
language plpgsql as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_worker_id);
  v_duration double precision := cas_end_attempt(v_task);
  v_error jsonb := coalesce(p_error, '{}'::jsonb) || jsonb_build_object('retryable', p_retryable);
begin
  if p_retryable and v_task.attempts < v_task.max_attempts and v_task.cancel_requested_at is null then
    return next cas_requeue_task(v_task,
      least(v_task.retry_delay_ms * power(2, v_task.attempts - 1), 3600000) * (0.5 + random() / 2),
      v_task.attempts, v_error, jsonb_build_object('error', v_error));
  else
    return next cas_finish_task(v_task, 'failed', v_duration, null, v_error, jsonb_build_object('error', v_error));
  end if;
end $$;

-- A worker acknowledges a cancellation request: the running attempt ends cancelled.
create or replace function cas_finish_cancelled_task(p_task_id uuid, p_worker_id text)
returns setof cas_tasks
language plpgsql as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_worker_id);
begin
  return next cas_finish_task(v_task, 'cancelled', cas_end_attempt(v_task), null, v_task.error, null);
end $$;


-- Queued tasks are cancelled at once; running ones get a request their worker acts on.
create or replace function cas_cancel_task(p_task_id uuid, p_user_id text default null)
returns setof cas_tasks
language plpgsql as $$
declare
  v_task cas_tasks;
begin
  select * into v_task from cas_tasks where id = p_task_id for update;
  if not found then
    perform cas_raise_not_found('task', p_task_id::text);
  end if;
  if v_task.status = 'queued' then
    update cas_tasks set status = 'cancelled', cancel_requested_at = now(), finished_at = now(),
                         updated_at = now()
      where id = p_task_id returning * into v_task;
    perform cas_append_event('task_cancelled', v_task.agent_id, v_task.id,
      jsonb_build_object('attempt', v_task.attempts), p_user_id);
  elsif v_task.status = 'running' then
    if v_task.cancel_requested_at is null then
      update cas_tasks set cancel_requested_at = now(), updated_at = now()
        where id = p_task_id returning * into v_task;
      perform cas_append_event('task_cancel_requested', v_task.agent_id, v_task.id,
        jsonb_build_object('attempt', v_task.attempts, 'workerId', v_task.worker_id), p_user_id);
    end if;
  else
    perform cas_raise_conflict(format('task "%s" already finished with status %s', p_task_id, v_task.status));
  end if;
  return next v_task;
end $$;

create or replace function cas_report_progress(
  p_task_id uuid,
  p_worker_id text,
  p_progress double precision,
  p_message text default null
) returns setof cas_tasks
language plpgsql as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_worker_id);
begin
  update cas_tasks set progress = p_progress, progress_message = p_message, updated_at = now()
    where id = p_task_id returning * into v_task;
  perform cas_append_event('task_progress', v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', v_task.attempts, 'progress', p_progress, 'message', p_message), null);
  return next v_task;
end $$;

-- Hands a running task back to the queue at once (worker shutdown). The interrupted attempt does
-- not count against max_attempts.
create or replace function cas_release_task(p_task_id uuid, p_worker_id text) returns setof cas_tasks
language plpgsql as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_worker_id);
begin
  perform cas_end_attempt(v_task);
  return next cas_requeue_task(v_task, 0, v_task.attempts - 1, null,
    jsonb_build_object('reason', 'released', 'workerId', p_worker_id));
end $$;

-- Running tasks whose lease ran out belong to a worker that died. Each gets a new attempt if it has
-- attempts left (a cancellation request ends it cancelled), otherwise it fails with LEASE_EXPIRED.
create or replace function cas_expire_leases(p_limit int default 100) returns setof cas_tasks
language plpgsql as $$
declare
  v_ids uuid[];
  v_id uuid;
  v_task cas_tasks;
  v_duration double precision;
  v_error jsonb;
begin
  select array_agg(expired.id order by expired.lease_expires_at) into v_ids
  from (
    select id, lease_expires_at from cas_tasks
    where status = 'running' and lease_expires_at < now()
    order by lease_expires_at
    limit greatest(p_limit, 0)
    for update skip locked
  ) expired;
  if v_ids is null then
    return;
  end if;
  perform cas_lock_agent_status(v_ids);
  foreach v_id in array v_ids loop
    select * into v_task from cas_tasks where id = v_id;
    v_duration := cas_end_attempt(v_task);
    v_error := jsonb_build_object('message', format('worker "%s" stopped renewing its lease', v_task.worker_id),
                                  'code', 'LEASE_EXPIRED', 'retryable', true);
    if v_task.cancel_requested_at is not null then
      return next cas_finish_task(v_task, 'cancelled', v_duration, null, v_task.error,
        jsonb_build_object('reason', 'lease_expired'));
    elsif v_task.attempts < v_task.max_attempts then
      return next cas_requeue_task(v_task, 0, v_task.attempts, v_error,
        jsonb_build_object('reason', 'lease_expired', 'error', v_error));
    else
      return next cas_finish_task(v_task, 'failed', v_duration, null, v_error, jsonb_build_object('error', v_error));
    end if;
  end loop;
end $$;

create or replace function cas_extend_lease(p_task_ids uuid[], p_worker_id text, p_lease_ms int)
returns setof cas_tasks
language sql as $$
  update cas_tasks set lease_expires_at = now() + make_interval(secs => p_lease_ms / 1000.0)
  where id = any (p_task_ids) and status = 'running' and worker_id = p_worker_id
  returning *
$$;

create or replace function cas_get_tasks(p_ids uuid[]) returns setof cas_tasks
language sql stable as $$
  select * from cas_tasks where id = any (p_ids)
$$;

create or replace function cas_list_tasks(
  p_agent_id text default null,
  p_statuses text[] default null,
  p_before_seq bigint default null,
  p_limit int default 50
) returns setof cas_tasks
language sql stable as $$
  select * from cas_tasks t
  where (p_agent_id is null or t.agent_id = p_agent_id)
    and (p_statuses is null or t.status = any (p_statuses))
    and (p_before_seq is null or t.seq < p_before_seq)
  order by t.seq desc
  limit greatest(p_limit, 0)
$$;

create or replace function cas_count_tasks(p_agent_id text default null, p_statuses text[] default null)
returns bigint
language sql stable as $$
  select count(*) from cas_tasks t
  where (p_agent_id is null or t.agent_id = p_agent_id)
    and (p_statuses is null or t.status = any (p_statuses))
$$;

-- The newest p_limit tasks of each agent, in one statement for batched loading.
create or replace function cas_recent_tasks(p_agent_ids text[], p_limit int default 5)
returns setof cas_tasks
language sql stable as $$
  select t.* from unnest(p_agent_ids) as a(agent_id)
  cross join lateral (
    select * from cas_tasks t where t.agent_id = a.agent_id order by t.seq desc limit greatest(p_limit, 0)
  ) t
$$;
