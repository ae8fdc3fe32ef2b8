-- Agents: the persisted registry (cas_agents) and the live status the seed's UIs read (cas_agent_status).

create table if not exists cas_agents (
  id text primary key check (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  name text not null check (char_length(name) between 1 and 200),
  role text not null check (char_length(role) between 1 and 100),
  description text check (char_length(description) <= 2000),
  registered_at timestamptz not null default now(),
  unregistered_at timestamptz
);
comment on table cas_agents is 'Agent registry. Rows are never deleted: unregistering stops an agent and keeps its history.';

create table if not exists cas_agent_status (
  agent_id text primary key references cas_agents (id),
  status text not null default 'idle' check (status in ('idle', 'busy', 'stopped', 'error')),
  started_at timestamptz,
  last_activity_at timestamptz,
  error_message text,
  running_tasks int not null default 0 check (running_tasks >= 0),
  updated_at timestamptz not null default now(),
  check ((status = 'stopped') = (started_at is null))
);
comment on column cas_agent_status.started_at is 'When the agent last became available; uptime counts from here. Null while stopped.';
comment on column cas_agent_status.running_tasks is 'Tasks of this agent in status running; busy while above zero.';

create or replace view cas_agents_view with (security_invoker = true) as
select a.id, a.name, a.role, a.description, a.registered_at, a.unregistered_at,
       s.status, s.started_at, s.last_activity_at, s.error_message, s.running_tasks
from cas_agents a
join cas_agent_status s on s.agent_id = a.id;

create or replace function cas_raise_not_found(p_what text, p_id text) returns void
language plpgsql as $$
begin
  raise exception using errcode = 'CASNF', message = format('%s "%s" was not found', p_what, p_id);
end $$;

create or replace function cas_register_agent(
  p_id text,
  p_name text,
  p_role text,
  p_description text default null,
  p_user_id text default null
) returns setof cas_agents_view
language plpgsql as $$
begin
  -- Registering again updates the description and brings a stopped agent back; history is kept.
  insert into cas_agents as a (id, name, role, description)
  values (p_id, p_name, p_role, p_description)
  on conflict (id) do update
    set name = excluded.name, role = excluded.role, description = excluded.description,
        unregistered_at = null;
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

create or replace function cas_unregister_agent(p_id text, p_user_id text default null)
returns setof cas_agents_view
language plpgsql as $$
declare
  v_task record;
begin
  perform 1 from cas_agents where id = p_id for update;
  if not found then
    perform cas_raise_not_found('agent', p_id);
  end if;
  -- Lock order (see cas_lock_agent_status): the agent's queued tasks before its status row.
  perform 1 from cas_tasks where agent_id = p_id and status = 'queued' order by id for update;
  update cas_agent_status
    set status = 'stopped', started_at = null, last_activity_at = now(), updated_at = now()
    where agent_id = p_id and status <> 'stopped';
  if found then
    update cas_agents set unregistered_at = now() where id = p_id;
    -- Queued work can no longer run; running tasks finish and keep their results.
    for v_task in
      update cas_tasks set status = 'cancelled', finished_at = now(), updated_at = now(),
        error = jsonb_build_object('message', 'agent was unregistered', 'code', 'AGENT_UNREGISTERED', 'retryable', false)
      where agent_id = p_id and status = 'queued'
      returning id
    loop
      perform cas_append_event('task_cancelled', p_id, v_task.id,
        jsonb_build_object('reason', 'agent_unregistered'), p_user_id);
    end loop;
    perform cas_append_event('agent_unregistered', p_id, null, '{}'::jsonb, p_user_id);
  end if;
  return query select * from cas_agents_view where id = p_id;
end $$;

create or replace function cas_list_agents(p_ids text[] default null)
returns setof cas_agents_view
language sql stable as $$
  select * from cas_agents_view where p_ids is null or id = any (p_ids) order by id
$$;
