-- Durable execution for the Agent SDK: steps memoised with their task, child tasks (ctx.call),
-- durable sleeps and signals, and the WAITING status, in which a task holds no worker slot.
--
-- A handler that waits (for children, a signal or a timer) suspends: its attempt ends in status
-- 'waiting' with run_at set to when it must run again (its earliest timer, or never). Whatever it
-- waited for makes it due (run_at = now()) in the transaction that settles the last awaited step,
-- and a worker claims it like a queued task, without counting a new attempt. The handler then runs
-- from the start: completed steps return their stored results.
--
-- Lock order, refining 20261202000100_cas_task_leases.sql's "task rows first": among task rows, a
-- child's row before its parent's (descendants before ancestors: deepest first, then by id).
-- A child's final status settles its parent's step in the same transaction, so the functions that
-- end a task lock its parent's row right after its own, before any agent row or event.

-- 1. Tables -----------------------------------------------------------------------------------------

alter table cas_tasks drop constraint if exists cas_tasks_status_check;
alter table cas_tasks add constraint cas_tasks_status_check
  check (status in ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'));
alter table cas_task_counts drop constraint if exists cas_task_counts_status_check;
alter table cas_task_counts add constraint cas_task_counts_status_check
  check (status in ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'));

alter table cas_agent_events drop constraint if exists cas_agent_events_event_type_check;
alter table cas_agent_events add constraint cas_agent_events_event_type_check check (event_type in (
  'agent_registered', 'agent_unregistered', 'task_queued', 'task_started', 'task_progress',
  'task_completed', 'task_failed', 'task_cancel_requested', 'task_cancelled', 'task_retry_scheduled',
  'task_waiting', 'task_resumed', 'task_signal_received', 'step_started', 'step_completed', 'step_failed',
  'state_updated', 'state_reset'));

alter table cas_tasks add column if not exists parent_id uuid references cas_tasks (id) on delete set null;
alter table cas_tasks add column if not exists depth int not null default 0 check (depth >= 0);
alter table cas_tasks add column if not exists waiting_for jsonb;
comment on column cas_tasks.parent_id is 'The task whose ctx.call queued this one; its final status settles the parent''s step.';
comment on column cas_tasks.depth is 'Calls between this task and the task a client queued (0): bounded by the call depth limit.';
comment on column cas_tasks.waiting_for is
  'While waiting: { kind, keys, childTaskIds, signal, until } of what the suspended attempt waits for.';
create index if not exists cas_tasks_parent_idx on cas_tasks (parent_id, seq) where parent_id is not null;

-- Waiting tasks are claimed when they are due, beside queued ones. Their own index keeps the queue's
-- small: thousands of tasks waiting for a person's approval cost a claim nothing.
create index if not exists cas_tasks_waiting_due_idx on cas_tasks (run_at, seq) where status = 'waiting';

create table if not exists cas_task_steps (
  task_id uuid not null references cas_tasks (id) on delete cascade,
  step_key text not null check (char_length(step_key) between 1 and 300),
  kind text not null check (kind in ('step', 'call', 'sleep', 'signal')),
  status text not null check (status in ('pending', 'completed', 'failed', 'timed_out')),
  result jsonb,
  error jsonb,
  child_task_id uuid references cas_tasks (id) on delete set null,
  signal_name text,
  wake_at timestamptz,
  attempt int not null,
  created_at timestamptz not null default now(),
  settled_at timestamptz,
  primary key (task_id, step_key)
);
comment on table cas_task_steps is
  'What a task''s durable operations produced (ctx.step results, children, sleeps, signals), so a '
  'task that runs again replays them instead of repeating them. Deleted with the task.';
create index if not exists cas_task_steps_child_idx on cas_task_steps (child_task_id)
  where child_task_id is not null;
create index if not exists cas_task_steps_pending_call_idx on cas_task_steps (child_task_id)
  where status = 'pending' and kind = 'call';

create table if not exists cas_task_signals (
  id bigint generated always as identity primary key,
  task_id uuid not null references cas_tasks (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 100),
  payload jsonb,
  user_id text,
  created_at timestamptz not null default now(),
  consumed_by text
);
comment on table cas_task_signals is
  'Signals sent to tasks (signalTask). consumed_by names the waitForSignal step that received it; '
  'a signal sent before its wait started waits here for it.';
create index if not exists cas_task_signals_undelivered_idx on cas_task_signals (task_id, name, id)
  where consumed_by is null;

alter table cas_task_steps enable row level security;
alter table cas_task_signals enable row level security;

-- A waiting task that waits for no timer is due "never": a real date, so every driver reads it.
create or replace function cas_never() returns timestamptz
language sql immutable set search_path = public, pg_temp as $$ select '9999-12-31T00:00:00Z'::timestamptz $$;

-- 2. Locks --------------------------------------------------------------------------------------------

-- Locks the parents of these tasks (after the tasks themselves: descendants before ancestors).
create or replace function cas_lock_parents(p_task_ids uuid[]) returns void
language plpgsql set search_path = public, pg_temp as $$
begin
  perform 1 from cas_tasks
    where id in (select parent_id from cas_tasks where id = any (p_task_ids) and parent_id is not null)
    order by depth desc, id
    for update;
end $$;

-- 3. Settling what a waiting task waits for -----------------------------------------------------------

-- Makes a waiting task due now when every step it waits for has settled, with its event.
-- The caller holds the task's row lock.
create or replace function cas_wake_if_ready(p_task_id uuid, p_reason text) returns void
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks;
begin
  update cas_tasks t set run_at = now(), updated_at = now()
    where t.id = p_task_id and t.status = 'waiting' and t.run_at > now()
      and not exists (
        select 1 from cas_task_steps s
        where s.task_id = t.id and s.status = 'pending'
          and s.step_key in (select jsonb_array_elements_text(t.waiting_for -> 'keys')))
    returning * into v_task;
  if found then
    perform cas_append_event('task_resumed', v_task.agent_id, v_task.id,
      jsonb_build_object('reason', p_reason), null);
  end if;
end $$;

-- A child reached its final status: its parent's call step settles, and the parent is due if that
-- was the last thing it waited for. The caller holds the parent's row lock (cas_lock_parents).
create or replace function cas_settle_child(p_child cas_tasks) returns void
language plpgsql set search_path = public, pg_temp as $$
begin
  if p_child.parent_id is null then
    return;
  end if;
  update cas_task_steps
    set status = case when p_child.status = 'succeeded' then 'completed' else 'failed' end,
        result = case when p_child.status = 'succeeded' then p_child.result end,
        error = case when p_child.status <> 'succeeded' then jsonb_build_object(
          'message', coalesce(p_child.error ->> 'message',
                              format('child task %s was %s', p_child.id, p_child.status)),
          'code', case when p_child.status = 'cancelled' then 'CANCELLED'
                       else coalesce(p_child.error ->> 'code', 'TASK_FAILED') end,
          'childTaskId', p_child.id) end,
        settled_at = now()
    where task_id = p_child.parent_id and child_task_id = p_child.id and status = 'pending';
  if found then
    perform cas_wake_if_ready(p_child.parent_id, 'child_finished');
  end if;
end $$;

-- Catches up on children whose parent could not be settled in the transaction that ended them (a
-- task cancelled because its agent was unregistered): settles those steps and wakes the parents.
create or replace function cas_settle_finished_children(p_limit int default 100) returns int
language plpgsql set search_path = public, pg_temp as $$
declare
  v_child cas_tasks;
  v_settled int := 0;
begin
  for v_child in
    select c.* from cas_task_steps s
    join cas_tasks c on c.id = s.child_task_id
    where s.status = 'pending' and s.kind = 'call'
      and c.status in ('succeeded', 'failed', 'cancelled')
    order by c.depth desc, c.parent_id
    limit greatest(p_limit, 0)
  loop
    perform 1 from cas_tasks where id = v_child.parent_id for update skip locked;
    if found then
      perform cas_settle_child(v_child);
      v_settled := v_settled + 1;
    end if;
  end loop;
  return v_settled;
end $$;

-- 4. Endings of a running task settle its parent ----------------------------------------------------

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
  return v_task;
end $$;

create or replace function cas_complete_task(p_task_id uuid, p_lease_token uuid, p_result jsonb default null)
returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
begin
  perform cas_lock_parents(array[p_task_id]);
  perform cas_lock_agent_status(array[p_task_id]);
  return next cas_finish_task(v_task, 'succeeded', cas_end_attempt(v_task), p_result, null, null);
end $$;

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
  perform cas_lock_parents(array[p_task_id]);
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

create or replace function cas_finish_cancelled_task(p_task_id uuid, p_lease_token uuid)
returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
begin
  perform cas_lock_parents(array[p_task_id]);
  perform cas_lock_agent_status(array[p_task_id]);
  return next cas_finish_task(v_task, 'cancelled', cas_end_attempt(v_task), null, v_task.error, null);
end $$;

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
  perform cas_lock_parents(v_ids);
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

-- 5. Claiming a due waiting task resumes it without counting an attempt ------------------------------

create or replace function cas_begin_attempt(p_task_id uuid, p_worker_id text, p_lease_ms int)
returns cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks;
  v_resumed boolean;
begin
  select status = 'waiting' into v_resumed from cas_tasks where id = p_task_id;
  update cas_tasks
    set status = 'running', attempts = attempts + case when v_resumed then 0 else 1 end,
        worker_id = p_worker_id, lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => p_lease_ms / 1000.0),
        started_at = clock_timestamp(), progress = null, progress_message = null, waiting_for = null,
        updated_at = now()
    where id = p_task_id
    returning * into v_task;
  update cas_agent_status
    set running_tasks = running_tasks + 1,
        status = case when status = 'stopped' then status else 'busy' end,
        last_activity_at = now(), updated_at = now()
    where agent_id = v_task.agent_id;
  perform cas_append_event('task_started', v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', v_task.attempts, 'workerId', p_worker_id, 'resumed', v_resumed), null);
  return v_task;
end $$;

-- Whether a claim may start a task of this agent and caller now: the agent is among p_agent_ids
-- (all when null) and below its maxConcurrency, the caller below p_max_running_per_caller. Read
-- without locks to pick candidates; cas_claim_tasks checks again under them.
create or replace function cas_task_claimable(
  p_agent_id text,
  p_user_id text,
  p_agent_ids text[],
  p_max_running_per_caller int
) returns boolean
language sql stable set search_path = public, pg_temp as $$
  select (p_agent_ids is null or p_agent_id = any (p_agent_ids))
    and not exists (
      select 1 from cas_agents a join cas_agent_status s on s.agent_id = a.id
      where a.id = p_agent_id and s.running_tasks >= a.max_concurrency)
    and (p_max_running_per_caller is null
         or cas_running_tasks_of_caller(coalesce(p_user_id, '')) < p_max_running_per_caller)
$$;

create or replace function cas_claim_tasks(
  p_worker_id text,
  p_limit int default 1,
  p_lease_ms int default 30000,
  p_agent_ids text[] default null,
  p_max_running_per_caller int default null
) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_ids uuid[];
  v_id uuid;
  v_caller_key bigint;
  v_next record;
begin
  -- Due queued tasks by priority, and due waiting tasks (resumed) by when they came due; each set
  -- skips rows other workers hold; the best p_limit of both are claimed.
  with queued as (
    -- cas_task_claimable's condition written out: the hot path of every claim, planned inline.
    select t.id, t.priority, t.run_at, t.seq from cas_tasks t
    where t.status = 'queued' and t.run_at <= now()
      and (p_agent_ids is null or t.agent_id = any (p_agent_ids))
      and not exists (
        select 1 from cas_agents a join cas_agent_status s on s.agent_id = a.id
        where a.id = t.agent_id and s.running_tasks >= a.max_concurrency)
      and (p_max_running_per_caller is null
           or cas_running_tasks_of_caller(coalesce(t.user_id, '')) < p_max_running_per_caller)
    order by t.priority desc, t.run_at, t.seq
    limit greatest(p_limit, 0)
    for update of t skip locked
  ), resumed as (
    select t.id, t.priority, t.run_at, t.seq from cas_tasks t
    where t.status = 'waiting' and t.run_at <= now()
      and cas_task_claimable(t.agent_id, t.user_id, p_agent_ids, p_max_running_per_caller)
    order by t.run_at, t.seq
    limit greatest(p_limit, 0)
    for update of t skip locked
  )
  select array_agg(picked.id order by picked.priority desc, picked.run_at, picked.seq) into v_ids
  from (
    select * from queued union all select * from resumed
    order by priority desc, run_at, seq
    limit greatest(p_limit, 0)
  ) picked;
  if v_ids is null then
    return;
  end if;
  perform cas_lock_agent_status(v_ids);
  if p_max_running_per_caller is not null then
    for v_caller_key in
      select distinct hashtextextended('cas_caller:' || coalesce(user_id, ''), 0) as k
      from cas_tasks where id = any (v_ids) order by k
    loop
      perform pg_advisory_xact_lock(v_caller_key);
    end loop;
  end if;
  foreach v_id in array v_ids loop
    -- Read after the locks: an unregistering or a claim that committed meanwhile is seen, and the
    -- attempts this claim began are counted.
    select s.status, s.running_tasks, a.max_concurrency, coalesce(t.user_id, '') as caller into v_next
      from cas_tasks t
      join cas_agents a on a.id = t.agent_id
      join cas_agent_status s on s.agent_id = t.agent_id
      where t.id = v_id;
    if v_next.status = 'stopped' then
      -- Its parent, if any, is settled by cas_settle_finished_children (its row is not locked here).
      perform cas_cancel_for_unregistered_agent(v_id, null);
    elsif v_next.running_tasks >= coalesce(v_next.max_concurrency, v_next.running_tasks + 1)
       or cas_running_tasks_of_caller(v_next.caller) >= coalesce(p_max_running_per_caller, 2147483647) then
      continue; -- stays queued for a later claim
    else
      return next cas_begin_attempt(v_id, p_worker_id, p_lease_ms);
    end if;
  end loop;
end $$;

-- 6. The durable operations of a running attempt --------------------------------------------------

-- The task's steps as its attempt starts replaying them; sleeps and signal waits whose time has
-- come are settled first (a sleep completes, a signal wait times out).
create or replace function cas_task_steps_for_run(p_task_id uuid, p_lease_token uuid)
returns setof cas_task_steps
language plpgsql set search_path = public, pg_temp as $$
begin
  perform cas_lock_running_task(p_task_id, p_lease_token);
  update cas_task_steps
    set status = case kind when 'sleep' then 'completed' else 'timed_out' end, settled_at = now()
    where task_id = p_task_id and status = 'pending' and kind in ('sleep', 'signal') and wake_at <= now();
  return query select * from cas_task_steps where task_id = p_task_id order by created_at, step_key;
end $$;

-- ctx.step: a step starts (its event); it runs in the worker.
create or replace function cas_start_step(p_task_id uuid, p_lease_token uuid, p_step_key text)
returns boolean
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
begin
  perform cas_append_event('step_started', v_task.agent_id, v_task.id,
    jsonb_build_object('step', p_step_key, 'attempt', v_task.attempts), null);
  return true;
end $$;

-- ctx.step: the step's result is stored with the task, with its event.
create or replace function cas_complete_step(p_task_id uuid, p_lease_token uuid, p_step_key text, p_result jsonb)
returns setof cas_task_steps
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
begin
  insert into cas_task_steps (task_id, step_key, kind, status, result, attempt, settled_at)
  values (p_task_id, p_step_key, 'step', 'completed', p_result, v_task.attempts, now())
  on conflict (task_id, step_key) do nothing;
  if not found then
    perform cas_raise_conflict(format('step "%s" of task "%s" is already stored', p_step_key, p_task_id));
  end if;
  perform cas_append_event('step_completed', v_task.agent_id, v_task.id,
    jsonb_build_object('step', p_step_key, 'attempt', v_task.attempts), null);
  return query select * from cas_task_steps where task_id = p_task_id and step_key = p_step_key;
end $$;

-- ctx.step: the step threw; nothing is stored, so the next attempt runs it again.
create or replace function cas_fail_step(p_task_id uuid, p_lease_token uuid, p_step_key text, p_error jsonb)
returns boolean
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
begin
  perform cas_append_event('step_failed', v_task.agent_id, v_task.id,
    jsonb_build_object('step', p_step_key, 'attempt', v_task.attempts, 'error', p_error), null);
  return true;
end $$;

-- ctx.call / ctx.callAll: queues the children these call steps name, unless queued already (a
-- replay), in one transaction with their steps. p_calls: [{ key, agentId, action, input,
-- maxAttempts, timeoutMs }]. Refuses a call deeper than p_max_depth (CASDL) and a call that repeats
-- an ancestor's (or this task's) agent, action and input (CASCY): it would never end.
create or replace function cas_call_children(
  p_task_id uuid,
  p_lease_token uuid,
  p_calls jsonb,
  p_max_depth int default 10
) returns setof cas_task_steps
language plpgsql set search_path = public, pg_temp as $$
declare
  v_parent cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
  v_new jsonb;
  v_call record;
  v_child cas_tasks;
begin
  if v_parent.cancel_requested_at is not null then
    perform cas_raise_conflict(format('task "%s" is being cancelled and queues no children', p_task_id));
  end if;
  -- The calls not queued before, each with the id its child will have.
  select jsonb_agg(c.value || jsonb_build_object('ord', c.ord, 'childId', gen_random_uuid()) order by c.ord)
    into v_new
    from jsonb_array_elements(p_calls) with ordinality as c(value, ord)
    where not exists (select 1 from cas_task_steps s where s.task_id = p_task_id and s.step_key = c.value ->> 'key');

  if v_new is not null then
    if v_parent.depth + 1 > p_max_depth then
      raise exception using errcode = 'CASDL', message = format(
        'call depth limit reached: task "%s" is %s calls deep and the limit is %s',
        p_task_id, v_parent.depth, p_max_depth);
    end if;
    for v_call in
      with recursive chain as (
        select id, parent_id, agent_id, action, input from cas_tasks where id = p_task_id
        union all
        select t.id, t.parent_id, t.agent_id, t.action, t.input from cas_tasks t join chain c on t.id = c.parent_id
      )
      select n."agentId" as agent_id, n.action, chain.id as ancestor
      from jsonb_to_recordset(v_new) as n("agentId" text, action text, input jsonb)
      join chain on chain.agent_id = n."agentId" and chain.action = n.action
                and chain.input is not distinct from coalesce(n.input, 'null'::jsonb)
      limit 1
    loop
      raise exception using errcode = 'CASCY', message = format(
        'call cycle: %s.%s with this input is already running as task "%s", an ancestor of this call',
        v_call.agent_id, v_call.action, v_call.ancestor);
    end loop;

    -- Agent rows after task rows; key share: the agents must stay registered until this commits.
    perform 1 from cas_agents
      where id in (select n."agentId" from jsonb_to_recordset(v_new) as n("agentId" text))
      order by id for key share;
    for v_call in
      select distinct n."agentId" as agent_id, s.status
      from jsonb_to_recordset(v_new) as n("agentId" text)
      left join cas_agent_status s on s.agent_id = n."agentId"
      order by 1
    loop
      if v_call.status is null then
        perform cas_raise_not_found('agent', v_call.agent_id);
      elsif v_call.status = 'stopped' then
        perform cas_raise_conflict(format('agent "%s" is stopped and does not accept tasks', v_call.agent_id));
      end if;
    end loop;

    insert into cas_tasks (id, agent_id, action, input, max_attempts, timeout_ms, priority, user_id,
                           parent_id, depth)
      select n."childId", n."agentId", n.action, coalesce(n.input, 'null'::jsonb), coalesce(n."maxAttempts", 1),
             n."timeoutMs", v_parent.priority, v_parent.user_id, p_task_id, v_parent.depth + 1
      from jsonb_to_recordset(v_new) as n(ord int, "childId" uuid, "agentId" text, action text, input jsonb,
                                          "maxAttempts" int, "timeoutMs" int)
      order by n.ord;
    insert into cas_task_steps (task_id, step_key, kind, status, child_task_id, attempt)
      select p_task_id, n.key, 'call', 'pending', n."childId", v_parent.attempts
      from jsonb_to_recordset(v_new) as n(ord int, key text, "childId" uuid)
      order by n.ord;
    for v_child in
      select t.* from jsonb_to_recordset(v_new) as n(ord int, "childId" uuid)
      join cas_tasks t on t.id = n."childId" order by n.ord
    loop
      perform cas_append_event('task_queued', v_child.agent_id, v_child.id,
        jsonb_build_object('action', v_child.action, 'runAt', v_child.run_at, 'parentTaskId', p_task_id),
        v_child.user_id);
    end loop;
  end if;
  return query select s.* from cas_task_steps s
    where s.task_id = p_task_id and s.step_key in (select value ->> 'key' from jsonb_array_elements(p_calls));
end $$;

-- ctx.sleep / ctx.waitForSignal: the wait's step, created once, with its timer p_wait_ms from now
-- (the database's clock; none when null). A signal sent before the wait started is delivered here.
create or replace function cas_begin_wait(
  p_task_id uuid,
  p_lease_token uuid,
  p_step_key text,
  p_kind text,
  p_signal_name text default null,
  p_wait_ms bigint default null
) returns setof cas_task_steps
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
  v_signal cas_task_signals;
  v_wake_at timestamptz := now() + make_interval(secs => p_wait_ms / 1000.0);
begin
  if p_kind not in ('sleep', 'signal') then
    raise exception using errcode = 'CASBI', message = format('not a kind of wait: %s', p_kind);
  end if;
  if not exists (select 1 from cas_task_steps where task_id = p_task_id and step_key = p_step_key) then
    if p_kind = 'signal' then
      select * into v_signal from cas_task_signals
        where task_id = p_task_id and name = p_signal_name and consumed_by is null
        order by id limit 1;
    end if;
    if v_signal.id is not null then
      update cas_task_signals set consumed_by = p_step_key where id = v_signal.id;
      insert into cas_task_steps (task_id, step_key, kind, status, result, signal_name, attempt, settled_at)
      values (p_task_id, p_step_key, 'signal', 'completed', v_signal.payload, p_signal_name, v_task.attempts, now());
    else
      insert into cas_task_steps (task_id, step_key, kind, status, signal_name, wake_at, attempt, settled_at)
      values (p_task_id, p_step_key, p_kind,
              case when p_kind = 'sleep' and p_wait_ms <= 0 then 'completed' else 'pending' end,
              p_signal_name, v_wake_at, v_task.attempts,
              case when p_kind = 'sleep' and p_wait_ms <= 0 then now() end);
    end if;
  end if;
  return query select * from cas_task_steps where task_id = p_task_id and step_key = p_step_key;
end $$;

-- The attempt suspends: the task waits, holding no worker slot, until every step in p_keys has
-- settled or the earliest of their timers comes due. If one settled meanwhile it is due at once.
-- A cancellation requested meanwhile ends it cancelled instead.
create or replace function cas_suspend_task(
  p_task_id uuid,
  p_lease_token uuid,
  p_keys text[],
  p_waiting_for jsonb
) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
  v_pending int;
  v_timer timestamptz;
  v_due timestamptz;
begin
  perform cas_lock_parents(array[p_task_id]);
  perform cas_lock_agent_status(array[p_task_id]);
  if v_task.cancel_requested_at is not null then
    return next cas_finish_task(v_task, 'cancelled', cas_end_attempt(v_task), null, v_task.error, null);
    return;
  end if;
  select count(*), min(wake_at) into v_pending, v_timer from cas_task_steps
    where task_id = p_task_id and step_key = any (p_keys) and status = 'pending';
  v_due := case when v_pending < cardinality(p_keys) then now() else coalesce(v_timer, cas_never()) end;

  update cas_agent_status
    set running_tasks = greatest(running_tasks - 1, 0),
        status = case when status = 'stopped' then status
                      when running_tasks - 1 > 0 then 'busy' else 'idle' end,
        last_activity_at = now(), updated_at = now()
    where agent_id = v_task.agent_id;
  update cas_tasks
    set status = 'waiting', worker_id = null, lease_token = null, lease_expires_at = null, run_at = v_due,
        waiting_for = coalesce(p_waiting_for, '{}'::jsonb) || jsonb_build_object('keys', to_jsonb(p_keys))
                      || case when v_timer is null then '{}'::jsonb else jsonb_build_object('until', v_timer) end,
        updated_at = now()
    where id = p_task_id
    returning * into v_task;
  perform cas_append_event('task_waiting', v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', v_task.attempts, 'waitingFor', v_task.waiting_for), null);
  if v_pending < cardinality(p_keys) then
    -- What it waits for arrived while the attempt was suspending: due at once, and every wait
    -- reads as waiting, then resumed.
    perform cas_append_event('task_resumed', v_task.agent_id, v_task.id,
      jsonb_build_object('reason', 'arrived_while_suspending'), null);
  end if;
  return next v_task;
end $$;

-- 7. Signals ------------------------------------------------------------------------------------------

-- Delivers a signal: to the task's oldest pending wait for this name, or kept until one starts.
-- A finished task takes no signals; undelivered signals per task are bounded.
create or replace function cas_signal_task(
  p_task_id uuid,
  p_name text,
  p_payload jsonb default null,
  p_user_id text default null,
  p_max_undelivered int default 1000
) returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks;
  v_signal_id bigint;
  v_step_key text;
begin
  select * into v_task from cas_tasks where id = p_task_id for update;
  if not found then
    perform cas_raise_not_found('task', p_task_id::text);
  end if;
  if v_task.status in ('succeeded', 'failed', 'cancelled') then
    perform cas_raise_conflict(format('task "%s" already finished with status %s and takes no signals',
      p_task_id, v_task.status));
  end if;
  if (select count(*) from cas_task_signals where task_id = p_task_id and consumed_by is null) >= p_max_undelivered then
    perform cas_raise_conflict(format('task "%s" already holds %s undelivered signals', p_task_id, p_max_undelivered));
  end if;
  select step_key into v_step_key from cas_task_steps
    where task_id = p_task_id and kind = 'signal' and signal_name = p_name and status = 'pending'
    order by created_at, step_key limit 1;
  insert into cas_task_signals (task_id, name, payload, user_id, consumed_by)
    values (p_task_id, p_name, p_payload, p_user_id, v_step_key)
    returning id into v_signal_id;
  perform cas_append_event('task_signal_received', v_task.agent_id, v_task.id,
    jsonb_build_object('name', p_name, 'signalId', v_signal_id, 'delivered', v_step_key is not null), p_user_id);
  if v_step_key is not null then
    update cas_task_steps set status = 'completed', result = p_payload, settled_at = now()
      where task_id = p_task_id and step_key = v_step_key;
    perform cas_wake_if_ready(p_task_id, 'signal');
  end if;
  return query select * from cas_tasks where id = p_task_id;
end $$;

-- 8. Cancelling a task cancels its descendants -------------------------------------------------------

-- Cancels one task whose row (and its parent's) the caller holds: a queued or waiting task at once,
-- a running one by request to its worker.
create or replace function cas_cancel_one(p_task_id uuid, p_user_id text, p_reason text)
returns cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks;
begin
  select * into v_task from cas_tasks where id = p_task_id;
  if v_task.status in ('queued', 'waiting') then
    update cas_tasks set status = 'cancelled', cancel_requested_at = now(), finished_at = now(),
                         waiting_for = null, updated_at = now()
      where id = p_task_id returning * into v_task;
    perform cas_append_event('task_cancelled', v_task.agent_id, v_task.id,
      jsonb_build_object('attempt', v_task.attempts) || coalesce(jsonb_build_object('reason', p_reason), '{}'::jsonb),
      p_user_id);
    perform cas_settle_child(v_task);
  elsif v_task.status = 'running' and v_task.cancel_requested_at is null then
    update cas_tasks set cancel_requested_at = now(), updated_at = now()
      where id = p_task_id returning * into v_task;
    perform cas_append_event('task_cancel_requested', v_task.agent_id, v_task.id,
      jsonb_build_object('attempt', v_task.attempts, 'workerId', v_task.worker_id)
        || coalesce(jsonb_build_object('reason', p_reason), '{}'::jsonb),
      p_user_id);
  end if;
  return v_task;
end $$;

create or replace function cas_cancel_task(p_task_id uuid, p_user_id text default null)
returns setof cas_tasks
language plpgsql set search_path = public, pg_temp as $$
declare
  v_descendants uuid[];
  v_task cas_tasks;
  v_id uuid;
begin
  -- Descendants that have not finished, deepest first; then the task; then its parent.
  with recursive tree as (
    select id, depth, status from cas_tasks where parent_id = p_task_id
    union all
    select t.id, t.depth, t.status from cas_tasks t join tree on t.parent_id = tree.id
  )
  select array_agg(id order by depth desc, id) into v_descendants
    from tree where status not in ('succeeded', 'failed', 'cancelled');
  perform 1 from cas_tasks where id = any (v_descendants) order by depth desc, id for update;
  select * into v_task from cas_tasks where id = p_task_id for update;
  if not found then
    perform cas_raise_not_found('task', p_task_id::text);
  end if;
  if v_task.status in ('succeeded', 'failed', 'cancelled') then
    perform cas_raise_conflict(format('task "%s" already finished with status %s', p_task_id, v_task.status));
  end if;
  perform cas_lock_parents(array[p_task_id]);
  perform cas_lock_agent_status(array[p_task_id] || coalesce(v_descendants, '{}'));

  v_task := cas_cancel_one(p_task_id, p_user_id, null);
  -- Shallowest first, so a parent is final (or stopping) before its children's endings settle it.
  for v_id in select id from cas_tasks where id = any (v_descendants) order by depth, id loop
    perform cas_cancel_one(v_id, p_user_id, 'parent_cancelled');
  end loop;
  return next v_task;
end $$;

-- 9. Reads --------------------------------------------------------------------------------------------

-- The children of each task, oldest first, at most p_limit per parent.
create or replace function cas_task_children(p_parent_ids uuid[], p_limit int default 100)
returns setof cas_tasks
language sql stable set search_path = public, pg_temp as $$
  select c.* from unnest(p_parent_ids) as p(id)
  cross join lateral (
    select * from cas_tasks t where t.parent_id = p.id order by t.seq limit greatest(p_limit, 0)
  ) c
$$;

-- 10. Grants: only the owner and the service role call cas_ functions -----------------------------

do $$
declare
  v_fn regprocedure;
begin
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
  if exists (select 1 from pg_roles where rolname = 'authenticated')
     and to_regprocedure('auth.uid()') is not null then
    drop policy if exists "authenticated reads steps of own tasks" on cas_task_steps;
    create policy "authenticated reads steps of own tasks" on cas_task_steps for select to authenticated
      using (task_id in (select t.id from cas_tasks t where t.user_id = (select auth.uid())::text));
  end if;
end $$;
