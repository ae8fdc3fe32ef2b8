-- Concurrency limits, so a few long tasks cannot hold every worker slot: at most max_concurrency
-- tasks of an agent run at once (across all workers), and a claim may cap the tasks running per
-- caller (tasks.user_id; tasks without one count as one anonymous caller). Tasks over a limit stay
-- queued and are claimed when a slot frees. Lock order as in 20261202000100_cas_task_leases.sql,
-- plus: a claim with a per-caller limit takes one advisory lock per caller (in key order) after the
-- agent rows and before its first event, so two claims cannot both take a caller's last slot.

alter table cas_agents add column if not exists max_concurrency int
  check (max_concurrency between 1 and 10000);
comment on column cas_agents.max_concurrency is
  'Most tasks of this agent running at once across all workers; null for no limit. Set by registerAgent.';

-- Counting a caller's running tasks at claim time; '' stands for the anonymous caller (user ids are
-- never empty).
create index if not exists cas_tasks_running_caller_idx on cas_tasks ((coalesce(user_id, '')))
  where status = 'running';

create or replace view cas_agents_view with (security_invoker = true) as
select a.id, a.name, a.role, a.description, a.registered_at, a.unregistered_at,
       s.status, s.started_at, s.last_activity_at, s.error_message, s.running_tasks,
       a.max_concurrency
from cas_agents a
join cas_agent_status s on s.agent_id = a.id;

drop function if exists cas_register_agent(text, text, text, text, text);
drop function if exists cas_claim_tasks(text, int, int, text[]);

create or replace function cas_register_agent(
  p_id text,
  p_name text,
  p_role text,
  p_description text default null,
  p_user_id text default null,
  p_max_concurrency int default null
) returns setof cas_agents_view
language plpgsql set search_path = public, pg_temp as $$
begin
  -- Registering again updates the description and the limit and brings a stopped agent back;
  -- history is kept. Lock order: cas_agents, then cas_agent_status.
  insert into cas_agents as a (id, name, role, description, max_concurrency)
  values (p_id, p_name, p_role, p_description, p_max_concurrency)
  on conflict (id) do update
    set name = excluded.name, role = excluded.role, description = excluded.description,
        max_concurrency = excluded.max_concurrency, unregistered_at = null;
  insert into cas_agent_status as s (agent_id, status, started_at, last_activity_at)
  values (p_id, 'idle', now(), now())
  on conflict (agent_id) do update
    set status = case when s.status = 'stopped' then 'idle' else s.status end,
        started_at = coalesce(s.started_at, now()),
        error_message = null,
        last_activity_at = now(),
        updated_at = now();
  perform cas_append_event('agent_registered', p_id, null,
    jsonb_build_object('name', p_name, 'role', p_role), p_user_id);
  return query select * from cas_agents_view where id = p_id;
end $$;

-- Tasks of this caller running now ('' is the anonymous caller).
create or replace function cas_running_tasks_of_caller(p_caller text) returns bigint
language sql stable set search_path = public, pg_temp as $$
  select count(*) from cas_tasks where status = 'running' and coalesce(user_id, '') = p_caller
$$;

-- Claims up to p_limit due tasks, highest priority first, skipping rows other workers hold and
-- tasks whose agent or caller is at its limit (p_max_running_per_caller null: no caller limit). A
-- task whose agent was unregistered meanwhile is cancelled (AGENT_UNREGISTERED) instead of started.
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
  select array_agg(picked.id order by picked.priority desc, picked.run_at, picked.seq) into v_ids
  from (
    select t.id, t.priority, t.run_at, t.seq from cas_tasks t
    where t.status = 'queued' and t.run_at <= now()
      and (p_agent_ids is null or t.agent_id = any (p_agent_ids))
      -- Agents and callers at their limit as of now are passed over; re-checked under locks below.
      and not exists (
        select 1 from cas_agents a join cas_agent_status s on s.agent_id = a.id
        where a.id = t.agent_id and s.running_tasks >= a.max_concurrency)
      and (p_max_running_per_caller is null
           or cas_running_tasks_of_caller(coalesce(t.user_id, '')) < p_max_running_per_caller)
    order by t.priority desc, t.run_at, t.seq
    limit greatest(p_limit, 0)
    for update of t skip locked
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
      perform cas_cancel_for_unregistered_agent(v_id, null);
    elsif v_next.running_tasks >= coalesce(v_next.max_concurrency, v_next.running_tasks + 1)
       or cas_running_tasks_of_caller(v_next.caller) >= coalesce(p_max_running_per_caller, 2147483647) then
      continue; -- stays queued for a later claim
    else
      return next cas_begin_attempt(v_id, p_worker_id, p_lease_ms);
    end if;
  end loop;
end $$;

-- Only the owner and the service role may call cas_ functions (see 20261125000400_cas_security.sql).
revoke execute on function cas_register_agent(text, text, text, text, text, int) from public;
revoke execute on function cas_running_tasks_of_caller(text) from public;
revoke execute on function cas_claim_tasks(text, int, int, text[], int) from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke execute on function cas_register_agent(text, text, text, text, text, int) from anon, authenticated;
    revoke execute on function cas_running_tasks_of_caller(text) from anon, authenticated;
    revoke execute on function cas_claim_tasks(text, int, int, text[], int) from anon, authenticated;
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    grant execute on function cas_register_agent(text, text, text, text, text, int) to service_role;
    grant execute on function cas_running_tasks_of_caller(text) to service_role;
    grant execute on function cas_claim_tasks(text, int, int, text[], int) to service_role;
  end if;
end $$;
