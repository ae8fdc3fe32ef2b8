-- Queue hardening: a lease token per claim, one lock order everywhere, no task queued for an agent
-- being unregistered, idempotency keys per caller and compared with the request, and a fixed
-- search_path on every cas_ function.
--
-- Lock order (every cas_ function keeps it; a function that writes several events locks every row
-- it will touch before its first event):
--   1. task rows (cas_tasks), by id when a function locks several and waits for them;
--   2. agent rows, by agent id: first cas_agents, then cas_agent_status.
--        cas_agents: FOR KEY SHARE by whatever needs the agent to stay (enqueueing, a task's attempt
--          ending, and every insert of a row that references it, which takes it implicitly);
--          FOR NO KEY UPDATE by writers of the agent itself (state, registration);
--          FOR UPDATE only by cas_unregister_agent, which must wait for enqueues in flight.
--        cas_agent_status: FOR NO KEY UPDATE (nothing changes its key).
--   3. the event sequence row, which cas_append_event takes last and holds to commit.
-- Before, the lease sweep inserted a metric row (an implicit key-share lock on cas_agents) after its
-- first event while state updates held cas_agents FOR UPDATE and waited for the sequence row:
-- a deadlock. Key-share and no-key-update locks do not conflict, and the sweep now takes its
-- agent locks before its first event.
--
-- Deploying: the functions that take a lease now take its token, so workers of an older version
-- stop being able to write; their running tasks are swept back to the queue when their leases run out.

-- 1. Lease tokens ---------------------------------------------------------------------------------

alter table cas_tasks add column if not exists lease_token uuid;
comment on column cas_tasks.lease_token is
  'Identifies the current attempt''s claim; every write of a running attempt must present it, so an '
  'attempt whose lease was swept cannot write over the attempt that replaced it. Null unless running.';
update cas_tasks set lease_token = gen_random_uuid() where status = 'running' and lease_token is null;
do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'cas_tasks_lease_token_check') then
    alter table cas_tasks add constraint cas_tasks_lease_token_check
      check ((status = 'running') = (lease_token is not null));
  end if;
end $$;

-- 2. Idempotency keys per caller (a null user_id is one shared anonymous scope) -------------------

drop index if exists cas_tasks_idempotency_key_idx;
create unique index if not exists cas_tasks_caller_idempotency_key_idx
  on cas_tasks (user_id, idempotency_key) nulls not distinct
  where idempotency_key is not null;

-- Functions whose signature changes are dropped first (they take a lease token now).
drop function if exists cas_lock_running_task(uuid, text);
drop function if exists cas_complete_task(uuid, text, jsonb);
drop function if exists cas_fail_task(uuid, text, jsonb, boolean);
drop function if exists cas_finish_cancelled_task(uuid, text);
drop function if exists cas_report_progress(uuid, text, double precision, text);
drop function if exists cas_release_task(uuid, text);
drop function if exists cas_extend_lease(uuid[], text, int);

-- Locks the agent rows of these tasks in the documented order: cas_agents (key share: the agent
-- must stay), then cas_agent_status (to be updated), each by agent id.
create or replace function cas_lock_agent_status(p_task_ids uuid[]) returns void
language plpgsql set search_path = public, pg_temp as $$
begin
  perform 1 from cas_agents
    where id in (select agent_id from cas_tasks where id = any (p_task_ids))
    order by id
    for key share;
  perform 1 from cas_agent_status
    where agent_id in (select agent_id from cas_tasks where id = any (p_task_ids))
    order by agent_id
    for no key update;
end $$;

-- State writers take turns per agent. No key update: it does not block key-share lockers (enqueues,
-- attempts ending, rows inserted that reference the agent).
create or replace function cas_lock_agent(p_agent_id text) returns void
language plpgsql set search_path = public, pg_temp as $$
begin
  perform 1 from cas_agents where id = p_agent_id for no key update;
  if not found then
    perform cas_raise_not_found('agent', p_agent_id);
  end if;
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
                         retry_delay_ms, idempotency_key, user_id)
  values (p_agent_id, p_action, p_input, coalesce(p_max_attempts, 1), p_timeout_ms,
          coalesce(p_priority, 0), coalesce(p_run_at, now()), coalesce(p_retry_delay_ms, 1000),
          p_idempotency_key, p_user_id)
  on conflict (user_id, idempotency_key) where idempotency_key is not null do nothing
  returning * into v_task;

  if v_task.id is null then
    -- This caller used the key before: the same request gets the same task, any other request is
    -- refused. runAt is not compared: a retry moves it.
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

-- Marks one claimed row as running: attempt count, a new lease token, lease, agent status, event.
create or replace function cas_begin_attempt(p_task_id uuid, p_worker_id text, p_lease_ms int)
returns cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks;
begin
  update cas_tasks
    set status = 'running', attempts = attempts + 1, worker_id = p_worker_id,
        lease_token = gen_random_uuid(),
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

-- Claims up to p_limit due tasks, highest priority first, skipping rows other workers hold. A task
-- whose agent was unregistered meanwhile is cancelled (AGENT_UNREGISTERED) instead of started.
create or replace function cas_claim_tasks(
  p_worker_id text,
  p_limit int default 1,
  p_lease_ms int default 30000,
  p_agent_ids text[] default null
) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
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
    -- Read after the agent locks, so an unregistering that committed meanwhile is seen.
    perform 1 from cas_tasks t
      join cas_agent_status s on s.agent_id = t.agent_id
      where t.id = v_id and s.status = 'stopped';
    if found then
      perform cas_cancel_for_unregistered_agent(v_id, null);
    else
      return next cas_begin_attempt(v_id, p_worker_id, p_lease_ms);
    end if;
  end loop;
end $$;

-- Ends a queued task whose agent was unregistered: cancelled with AGENT_UNREGISTERED, with its event.
create or replace function cas_cancel_for_unregistered_agent(p_task_id uuid, p_user_id text)
returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_agent_id text;
begin
  update cas_tasks set status = 'cancelled', finished_at = now(), updated_at = now(),
    error = jsonb_build_object('message', 'agent was unregistered', 'code', 'AGENT_UNREGISTERED',
                               'retryable', false)
    where id = p_task_id
    returning agent_id into v_agent_id;
  perform cas_append_event('task_cancelled', v_agent_id, p_task_id,
    jsonb_build_object('reason', 'agent_unregistered'), p_user_id);
end $$;

-- Locks a running task's row for a write of its current attempt. Another attempt's token (one whose
-- lease was swept, or a write retried after it landed) is a conflict the worker must respect.
create or replace function cas_lock_running_task(p_task_id uuid, p_lease_token uuid) returns cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks;
begin
  select * into v_task from cas_tasks where id = p_task_id for update;
  if not found then
    perform cas_raise_not_found('task', p_task_id::text);
  end if;
  if v_task.status <> 'running' or v_task.lease_token is distinct from p_lease_token then
    perform cas_raise_conflict(format('task "%s" is not running under this lease (attempt %s is %s)',
      p_task_id, v_task.attempts, v_task.status));
  end if;
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
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks;
begin
  update cas_tasks
    set status = 'queued', attempts = p_attempts, error = coalesce(p_error, error), worker_id = null,
        lease_token = null, lease_expires_at = null,
        run_at = clock_timestamp() + make_interval(secs => p_delay_ms / 1000.0), updated_at = now()
    where id = p_task.id
    returning * into v_task;
  perform cas_append_event('task_retry_scheduled', v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', p_task.attempts, 'delayMs', round(p_delay_ms), 'nextRunAt', v_task.run_at)
      || coalesce(p_payload, '{}'::jsonb),
    null);
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
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks;
begin
  update cas_tasks
    set status = p_status, result = p_result, error = p_error,
        progress = case when p_status = 'succeeded' then 1 else progress end,
        finished_at = clock_timestamp(), duration_ms = p_duration, worker_id = null,
        lease_token = null, lease_expires_at = null, updated_at = now()
    where id = p_task.id
    returning * into v_task;
  perform cas_append_event(
    case p_status when 'succeeded' then 'task_completed' when 'failed' then 'task_failed' else 'task_cancelled' end,
    v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', v_task.attempts, 'durationMs', p_duration) || coalesce(p_payload, '{}'::jsonb),
    null);
  return v_task;
end $$;

create or replace function cas_complete_task(p_task_id uuid, p_lease_token uuid, p_result jsonb default null)
returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
begin
  perform cas_lock_agent_status(array[p_task_id]);
  return next cas_finish_task(v_task, 'succeeded', cas_end_attempt(v_task), p_result, null, null);
end $$;

-- Fails the current attempt. Retryable errors with attempts left go back to the queue after an
-- exponential backoff with jitter (base * 2^(attempt-1), scaled by 0.5..1.0, capped at one hour).
create or replace function cas_fail_task(
  p_task_id uuid,
  p_lease_token uuid,
  p_error jsonb,
  p_retryable boolean default true
) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
  v_duration double precision;
  v_error jsonb := coalesce(p_error, '{}'::jsonb) || jsonb_build_object('retryable', p_retryable);
begin
  perform cas_lock_agent_status(array[p_task_id]);
  v_duration := cas_end_attempt(v_task);
  if p_retryable and v_task.attempts < v_task.max_attempts and v_task.cancel_requested_at is null then
    return next cas_requeue_task(v_task,
      least(v_task.retry_delay_ms * power(2, v_task.attempts - 1), 3600000) * (0.5 + random() / 2),
      v_task.attempts, v_error, jsonb_build_object('error', v_error));
  else
    return next cas_finish_task(v_task, 'failed', v_duration, null, v_error, jsonb_build_object('error', v_error));
  end if;
end $$;

-- A worker acknowledges a cancellation request: the running attempt ends cancelled.
create or replace function cas_finish_cancelled_task(p_task_id uuid, p_lease_token uuid)
returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
begin
  perform cas_lock_agent_status(array[p_task_id]);
  return next cas_finish_task(v_task, 'cancelled', cas_end_attempt(v_task), null, v_task.error, null);
end $$;

create or replace function cas_report_progress(
  p_task_id uuid,
  p_lease_token uuid,
  p_progress double precision,
  p_message text default null
) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
begin
  update cas_tasks set progress = p_progress, progress_message = p_message, updated_at = now()
    where id = p_task_id returning * into v_task;
  perform cas_append_event('task_progress', v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', v_task.attempts, 'progress', p_progress, 'message', p_message), null);
  return next v_task;
end $$;

-- Hands a running task back to the queue at once (worker shutdown). The interrupted attempt does
-- not count against max_attempts.
create or replace function cas_release_task(p_task_id uuid, p_lease_token uuid) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
begin
  perform cas_lock_agent_status(array[p_task_id]);
  perform cas_end_attempt(v_task);
  return next cas_requeue_task(v_task, 0, v_task.attempts - 1, null,
    jsonb_build_object('reason', 'released', 'workerId', v_task.worker_id));
end $$;

-- Running tasks whose lease ran out belong to a worker that died. Each gets a new attempt if it has
-- attempts left (a cancellation request ends it cancelled), otherwise it fails with LEASE_EXPIRED.
-- Every task row, then every agent row, is locked before the first event.
create or replace function cas_expire_leases(p_limit int default 100) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
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

-- Renews the leases a worker still holds: pairs of task id and lease token. Returns the tasks whose
-- lease was renewed; a task missing from the answer lost its lease.
create or replace function cas_extend_lease(p_task_ids uuid[], p_lease_tokens uuid[], p_lease_ms int)
returns setof cas_tasks
language sql set search_path = public, pg_temp as $$
  update cas_tasks t set lease_expires_at = now() + make_interval(secs => p_lease_ms / 1000.0)
  from unnest(p_task_ids, p_lease_tokens) as held(id, lease_token)
  where t.id = held.id and t.lease_token = held.lease_token and t.status = 'running'
  returning t.*
$$;

-- 3. Unregistering: no task is queued for an agent being unregistered --------------------------

create or replace function cas_unregister_agent(p_id text, p_user_id text default null)
returns setof cas_agents_view
language plpgsql set search_path = public, pg_temp as $$
declare
  v_ids uuid[];
  v_id uuid;
begin
  -- Lock order: the agent's queued tasks, then its agent rows. FOR UPDATE (not no key update) on
  -- cas_agents: it waits for enqueues in flight (they hold a key-share lock) and makes new ones wait
  -- until this commits and they see the agent stopped.
  perform 1 from cas_tasks where agent_id = p_id and status = 'queued' order by id for update;
  perform 1 from cas_agents where id = p_id for update;
  if not found then
    perform cas_raise_not_found('agent', p_id);
  end if;
  update cas_agent_status
    set status = 'stopped', started_at = null, last_activity_at = now(), updated_at = now()
    where agent_id = p_id and status <> 'stopped';
  if found then
    update cas_agents set unregistered_at = now() where id = p_id;
    -- Queued work can no longer run; running tasks finish and keep their results. Tasks queued while
    -- this waited for the agent lock are included; one a worker is claiming this instant is skipped
    -- (never waited for, after the agent lock): its claim sees the agent stopped and cancels it.
    select array_agg(queued.id order by queued.id) into v_ids from (
      select id from cas_tasks where agent_id = p_id and status = 'queued' order by id for update skip locked
    ) queued;
    foreach v_id in array coalesce(v_ids, '{}') loop
      perform cas_cancel_for_unregistered_agent(v_id, p_user_id);
    end loop;
    perform cas_append_event('agent_unregistered', p_id, null, '{}'::jsonb, p_user_id);
  end if;
  return query select * from cas_agents_view where id = p_id;
end $$;

-- 4. A fixed search_path on every cas_ function ----------------------------------------------------
-- Functions defined above carry it; this covers the rest. Functions added by later migrations must
-- carry `set search_path = public, pg_temp` themselves (test/db/search-path.test.ts checks).

do $$
declare
  v_fn regprocedure;
begin
  for v_fn in
    select p.oid::regprocedure from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'public' and p.proname like 'cas\_%'
      and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search\_path=%')
  loop
    execute format('alter function %s set search_path = public, pg_temp', v_fn);
  end loop;

  -- Functions created above start executable by everyone: only the owner and the service role may
  -- call cas_ functions (as in 20261125000400_cas_security.sql).
  for v_fn in
    select p.oid::regprocedure from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'public' and p.proname like 'cas\_%'
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
