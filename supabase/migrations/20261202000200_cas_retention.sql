-- Growth: retention of finished history, counters instead of scans, reads that use their indexes.
--
-- Retention (cas_prune_history, run by workers in small batches):
--   * tasks that finished before the cutoff are deleted;
--   * the event log and the logs lose their oldest entries, always as a prefix, so what is kept is
--     still contiguous: a reader that has seen position N still has everything after N;
--   * metric points older than the cutoff are deleted.
--   cas_retention records how far each log was pruned: a cursor before that point gets CASCE
--   (CURSOR_EXPIRED) instead of silently skipping what was deleted.
--
-- Counters (kept by statement triggers on cas_tasks, so every function that changes a task keeps
-- them right, and a statement changing many tasks updates each counter row once):
--   * cas_task_counts: tasks per agent and status, for totalCount;
--   * cas_task_rollups: finished tasks per agent and UTC hour, for metrics. Rollups are never
--     pruned, so all-time metrics survive retention.
--   The triggers lock the task's cas_agent_status row before touching a counter row. Every
--   function that changes a task already holds that row or takes it next (task rows, then agent
--   rows by agent id, then the event-sequence row), so counter rows never add a lock order of
--   their own; functions that change tasks of several agents lock those agents first, sorted.

create table if not exists cas_task_counts (
  agent_id text not null,
  status text not null check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  tasks bigint not null default 0 check (tasks >= 0),
  primary key (agent_id, status)
);
comment on table cas_task_counts is
  'Tasks per agent and status, kept by triggers on cas_tasks; totalCount reads it instead of counting rows.';

create table if not exists cas_task_rollups (
  agent_id text not null,
  hour timestamptz not null,
  succeeded bigint not null default 0,
  failed bigint not null default 0,
  cancelled bigint not null default 0,
  duration_ms_sum double precision not null default 0,
  duration_count bigint not null default 0,
  primary key (agent_id, hour)
);
comment on table cas_task_rollups is
  'Tasks that reached a final status, per agent and UTC hour of finished_at. Kept by a trigger on '
  'cas_tasks and never pruned: metrics read it instead of scanning the tasks.';
comment on column cas_task_rollups.duration_ms_sum is 'Sum of duration_ms of succeeded and failed tasks with a duration.';

create table if not exists cas_retention (
  log text primary key check (log in ('events', 'logs')),
  pruned_through bigint not null default 0
);
comment on table cas_retention is
  'How far retention deleted each ordered log: cas_agent_events up to seq pruned_through, '
  'cas_agent_logs up to id pruned_through. A cursor before it has expired.';
insert into cas_retention (log) values ('events'), ('logs') on conflict (log) do nothing;

-- The UTC hour a moment falls in (date_bin does not depend on the session's time zone).
create or replace function cas_hour_of(p_at timestamptz) returns timestamptz
language sql immutable set search_path = public, pg_temp as $$
  select date_bin('1 hour', p_at, timestamptz '2000-01-01 00:00:00+00')
$$;

-- Applies one statement's changes to the counters: the tasks it removed (p_old) and added (p_new),
-- as JSON arrays of cas_tasks rows. Per statement, not per row, so a statement that changes many
-- tasks (retention, unregistering an agent) updates each counter row once.
create or replace function cas_count_task_changes(p_old jsonb, p_new jsonb) returns void
language plpgsql set search_path = public, pg_temp as $$
begin
  -- Lock order: the agents' rows, by id, before any counter row (see the header of this file).
  perform 1 from cas_agent_status
    where agent_id in (select r.agent_id from jsonb_to_recordset(p_old || p_new) as r(agent_id text))
    order by agent_id for no key update;
  with deltas as (
    select agent_id, status, sum(delta) as delta from (
      select r.agent_id, r.status, -1 as delta from jsonb_to_recordset(p_old) as r(agent_id text, status text)
      union all
      select r.agent_id, r.status, 1 from jsonb_to_recordset(p_new) as r(agent_id text, status text)
    ) d
    group by agent_id, status
    having sum(delta) <> 0
  ),
  updated as (
    update cas_task_counts c set tasks = c.tasks + d.delta
    from deltas d where c.agent_id = d.agent_id and c.status = d.status
    returning c.agent_id, c.status
  )
  -- A first task of an agent in a status: the agent's row lock keeps others from racing here.
  insert into cas_task_counts (agent_id, status, tasks)
    select d.agent_id, d.status, d.delta from deltas d
    where not exists (select 1 from updated u where u.agent_id = d.agent_id and u.status = d.status);
  -- Tasks that became final in this statement.
  insert into cas_task_rollups as r (agent_id, hour, succeeded, failed, cancelled, duration_ms_sum, duration_count)
    select n.agent_id, cas_hour_of(n.finished_at),
           count(*) filter (where n.status = 'succeeded'),
           count(*) filter (where n.status = 'failed'),
           count(*) filter (where n.status = 'cancelled'),
           coalesce(sum(n.duration_ms) filter (where n.status in ('succeeded', 'failed')), 0),
           count(n.duration_ms) filter (where n.status in ('succeeded', 'failed'))
    from jsonb_to_recordset(p_new) as n(id uuid, agent_id text, status text, finished_at timestamptz, duration_ms double precision)
    where n.finished_at is not null
      and not exists (
        select 1 from jsonb_to_recordset(p_old) as o(id uuid, finished_at timestamptz)
        where o.id = n.id and o.finished_at is not null)
    group by n.agent_id, cas_hour_of(n.finished_at)
    order by n.agent_id
  on conflict (agent_id, hour) do update
    set succeeded = r.succeeded + excluded.succeeded,
        failed = r.failed + excluded.failed,
        cancelled = r.cancelled + excluded.cancelled,
        duration_ms_sum = r.duration_ms_sum + excluded.duration_ms_sum,
        duration_count = r.duration_count + excluded.duration_count;
end $$;

-- The rows a statement changed, as cas_count_task_changes wants them. Only the columns counted are
-- kept; an update that changes no status and finishes nothing (progress, leases) costs one scan.
create or replace function cas_count_inserted_tasks() returns trigger
language plpgsql set search_path = public, pg_temp as $$
begin
  perform cas_count_task_changes('[]'::jsonb,
    (select coalesce(jsonb_agg(jsonb_build_object('id', id, 'agent_id', agent_id, 'status', status,
       'finished_at', finished_at, 'duration_ms', duration_ms)), '[]'::jsonb) from new_tasks));
  return null;
end $$;

create or replace function cas_count_updated_tasks() returns trigger
language plpgsql set search_path = public, pg_temp as $$
declare
  v_old jsonb;
  v_new jsonb;
begin
  select coalesce(jsonb_agg(jsonb_build_object('id', o.id, 'agent_id', o.agent_id, 'status', o.status,
           'finished_at', o.finished_at)), '[]'::jsonb),
         coalesce(jsonb_agg(jsonb_build_object('id', n.id, 'agent_id', n.agent_id, 'status', n.status,
           'finished_at', n.finished_at, 'duration_ms', n.duration_ms)), '[]'::jsonb)
    into v_old, v_new
    from old_tasks o join new_tasks n on n.id = o.id
    where o.status is distinct from n.status or o.agent_id is distinct from n.agent_id;
  if v_new <> '[]'::jsonb then
    perform cas_count_task_changes(v_old, v_new);
  end if;
  return null;
end $$;

create or replace function cas_count_deleted_tasks() returns trigger
language plpgsql set search_path = public, pg_temp as $$
begin
  perform cas_count_task_changes(
    (select coalesce(jsonb_agg(jsonb_build_object('id', id, 'agent_id', agent_id, 'status', status,
       'finished_at', finished_at)), '[]'::jsonb) from deleted_tasks),
    '[]'::jsonb);
  return null;
end $$;

drop trigger if exists cas_count_inserted_tasks on cas_tasks;
create trigger cas_count_inserted_tasks after insert on cas_tasks
  referencing new table as new_tasks
  for each statement execute function cas_count_inserted_tasks();
drop trigger if exists cas_count_updated_tasks on cas_tasks;
create trigger cas_count_updated_tasks after update on cas_tasks
  referencing old table as old_tasks new table as new_tasks
  for each statement execute function cas_count_updated_tasks();
drop trigger if exists cas_count_deleted_tasks on cas_tasks;
create trigger cas_count_deleted_tasks after delete on cas_tasks
  referencing old table as deleted_tasks
  for each statement execute function cas_count_deleted_tasks();

-- Counters for the history that exists when this migration runs, recomputed under a lock that
-- keeps task writers out meanwhile (in a DO block, so it also holds where statements autocommit).
do $$
begin
  lock table cas_tasks in share row exclusive mode;
  delete from cas_task_counts;
  insert into cas_task_counts (agent_id, status, tasks)
    select agent_id, status, count(*) from cas_tasks group by agent_id, status;
  delete from cas_task_rollups;
  insert into cas_task_rollups (agent_id, hour, succeeded, failed, cancelled, duration_ms_sum, duration_count)
    select agent_id, cas_hour_of(finished_at),
           count(*) filter (where status = 'succeeded'),
           count(*) filter (where status = 'failed'),
           count(*) filter (where status = 'cancelled'),
           coalesce(sum(duration_ms) filter (where status in ('succeeded', 'failed')), 0),
           count(duration_ms) filter (where status in ('succeeded', 'failed'))
    from cas_tasks where finished_at is not null
    group by agent_id, cas_hour_of(finished_at);
end $$;

-- Indexes: each one serves a query below or in the queue functions; these served none.
drop index if exists cas_agent_events_agent_created_idx;   -- events are read by seq, never by time
drop index if exists cas_tasks_agent_created_idx;          -- tasks are paged by seq, measured by finished_at
drop index if exists cas_agent_config_agent_created_idx;   -- state history is read by version
drop index if exists cas_agent_logs_agent_created_idx;     -- an agent's logs are paged by id:
create index if not exists cas_agent_logs_agent_id_idx on cas_agent_logs (agent_id, id);

-- Raises CURSOR_EXPIRED when `p_after` lies before what retention kept of `p_log`. Called after
-- the rows were read: a prune that committed before that read has moved the mark by now.
-- Position 0 means "from the oldest kept" and never expires.
create or replace function cas_check_cursor(p_log text, p_after bigint) returns void
language plpgsql stable set search_path = public, pg_temp as $$
declare
  v_pruned bigint;
begin
  if coalesce(p_after, 0) = 0 then
    return;
  end if;
  select pruned_through into v_pruned from cas_retention where log = p_log;
  if p_after < v_pruned then
    raise exception using errcode = 'CASCE',
      message = format('the cursor is older than the kept history (%s entries up to %s were deleted by retention); start again without a cursor',
                       p_log, v_pruned);
  end if;
end $$;

-- The reads below build their statement from the filters actually given (format + EXECUTE), so
-- each call is planned for its own filters and uses the matching index, whoever calls it
-- (node-postgres, PGlite, or PostgREST RPC, whose arguments are not constants to the planner).

create or replace function cas_list_events(
  p_agent_id text default null,
  p_task_id uuid default null,
  p_types text[] default null,
  p_after_seq bigint default null,
  p_limit int default 50
) returns setof cas_agent_events
language plpgsql stable set search_path = public, pg_temp as $$
begin
  return query execute format(
    'select * from cas_agent_events e where e.seq > $4 %s %s %s order by e.seq limit $5',
    case when p_agent_id is not null then 'and e.agent_id = $1' else '' end,
    case when p_task_id is not null then 'and e.task_id = $2' else '' end,
    case when p_types is not null then 'and e.event_type = any ($3)' else '' end)
    using p_agent_id, p_task_id, p_types, coalesce(p_after_seq, 0), greatest(p_limit, 0);
  perform cas_check_cursor('events', p_after_seq);
end $$;

create or replace function cas_list_logs(
  p_agent_id text default null,
  p_task_id uuid default null,
  p_levels text[] default null,
  p_from timestamptz default null,
  p_to timestamptz default null,
  p_after_id bigint default null,
  p_limit int default 50,
  p_newest_first boolean default false
) returns setof cas_agent_logs
language plpgsql stable set search_path = public, pg_temp as $$
begin
  return query execute format(
    'select * from cas_agent_logs l where true %s %s %s %s %s %s order by l.id %s limit $7',
    case when p_agent_id is not null then 'and l.agent_id = $1' else '' end,
    case when p_task_id is not null then 'and l.task_id = $2' else '' end,
    case when p_levels is not null then 'and l.level = any ($3)' else '' end,
    case when p_from is not null then 'and l.created_at >= $4' else '' end,
    case when p_to is not null then 'and l.created_at < $5' else '' end,
    case when p_after_id is null then ''
         when p_newest_first then 'and l.id < $6' else 'and l.id > $6' end,
    case when p_newest_first then 'desc' else 'asc' end)
    using p_agent_id, p_task_id, p_levels, p_from, p_to, p_after_id, greatest(p_limit, 0);
  -- Paging backwards runs into the pruned part and simply ends; forwards it must not skip it.
  if not p_newest_first then
    perform cas_check_cursor('logs', p_after_id);
  end if;
end $$;

-- The newest log entry's id: where a live-only log reader starts. Never behind what was pruned.
create or replace function cas_log_head() returns bigint
language sql stable set search_path = public, pg_temp as $$
  select greatest(
    coalesce((select id from cas_agent_logs order by id desc limit 1), 0),
    coalesce((select pruned_through from cas_retention where log = 'logs'), 0))
$$;

create or replace function cas_event_head() returns bigint
language sql stable set search_path = public, pg_temp as $$
  select last_seq from cas_event_sequence where id
$$;

create or replace function cas_list_tasks(
  p_agent_id text default null,
  p_statuses text[] default null,
  p_before_seq bigint default null,
  p_limit int default 50
) returns setof cas_tasks
language plpgsql stable set search_path = public, pg_temp as $$
begin
  return query execute format(
    'select * from cas_tasks t where true %s %s %s order by t.seq desc limit $4',
    case when p_agent_id is not null then 'and t.agent_id = $1' else '' end,
    case when p_statuses is not null then 'and t.status = any ($2)' else '' end,
    case when p_before_seq is not null then 'and t.seq < $3' else '' end)
    using p_agent_id, p_statuses, p_before_seq, greatest(p_limit, 0);
end $$;

create or replace function cas_count_tasks(p_agent_id text default null, p_statuses text[] default null)
returns bigint
language sql stable set search_path = public, pg_temp as $$
  select coalesce(sum(c.tasks), 0)::bigint from cas_task_counts c
  where (p_agent_id is null or c.agent_id = p_agent_id)
    and (p_statuses is null or c.status = any (p_statuses))
$$;

create or replace function cas_get_tasks(p_ids uuid[]) returns setof cas_tasks
language sql stable set search_path = public, pg_temp as $$
  select * from cas_tasks where id = any (p_ids)
$$;

create or replace function cas_recent_tasks(p_agent_ids text[], p_limit int default 5)
returns setof cas_tasks
language sql stable set search_path = public, pg_temp as $$
  select t.* from unnest(p_agent_ids) as a(agent_id)
  cross join lateral (
    select * from cas_tasks t where t.agent_id = a.agent_id order by t.seq desc limit greatest(p_limit, 0)
  ) t
$$;

-- Run metrics per agent over tasks finished in [p_from, p_to). Whole UTC hours come from the
-- rollups; the partial hours at either end of a range come from the tasks themselves (by
-- agent_id, finished_at). So an open range reads rollups only, however long the history.
create or replace function cas_agent_metrics(
  p_agent_ids text[],
  p_from timestamptz default null,
  p_to timestamptz default null
) returns table (
  agent_id text,
  total_runs bigint,
  succeeded bigint,
  failed bigint,
  cancelled bigint,
  avg_duration_ms double precision,
  uptime_seconds double precision
)
language sql stable set search_path = public, pg_temp as $$
  with bounds as (
    -- [whole_from, whole_to): the whole hours inside the range.
    select coalesce(case when cas_hour_of(p_from) = p_from then p_from
                         else cas_hour_of(p_from) + interval '1 hour' end,
                    '-infinity'::timestamptz) as whole_from,
           coalesce(cas_hour_of(p_to), 'infinity'::timestamptz) as whole_to
  ),
  parts as (
    select r.agent_id, r.succeeded, r.failed, r.cancelled, r.duration_ms_sum, r.duration_count
    from cas_task_rollups r, bounds b
    where r.agent_id = any (p_agent_ids) and r.hour >= b.whole_from and r.hour < b.whole_to
    union all
    select t.agent_id,
           (t.status = 'succeeded')::int, (t.status = 'failed')::int, (t.status = 'cancelled')::int,
           case when t.status in ('succeeded', 'failed') then coalesce(t.duration_ms, 0) else 0 end,
           (t.status in ('succeeded', 'failed') and t.duration_ms is not null)::int
    from cas_tasks t, bounds b
    -- Param-only first: an open range becomes a one-time filter that skips this scan entirely.
    where (p_from is not null or p_to is not null)
      and t.agent_id = any (p_agent_ids) and t.finished_at is not null
      and ((p_from is not null and t.finished_at >= p_from
            and t.finished_at < least(b.whole_from, coalesce(p_to, 'infinity'::timestamptz)))
        or (p_to is not null and t.finished_at < p_to
            and t.finished_at >= greatest(b.whole_to, b.whole_from)))
  )
  select a.id,
         coalesce(sum(p.succeeded + p.failed + p.cancelled), 0)::bigint,
         coalesce(sum(p.succeeded), 0)::bigint,
         coalesce(sum(p.failed), 0)::bigint,
         coalesce(sum(p.cancelled), 0)::bigint,
         (sum(p.duration_ms_sum) / nullif(sum(p.duration_count), 0))::double precision,
         coalesce(extract(epoch from now() - s.started_at), 0)::double precision
  from unnest(p_agent_ids) as a(id)
  join cas_agent_status s on s.agent_id = a.id
  left join parts p on p.agent_id = a.id
  group by a.id, s.started_at
$$;

create or replace function cas_metric_series(
  p_agent_id text,
  p_metric_name text,
  p_from timestamptz default null,
  p_to timestamptz default null,
  p_limit int default 500
) returns setof cas_metrics_timeseries
language sql stable set search_path = public, pg_temp as $$
  select * from cas_metrics_timeseries m
  where m.agent_id = p_agent_id and m.metric_name = p_metric_name
    and (p_from is null or m.recorded_at >= p_from)
    and (p_to is null or m.recorded_at < p_to)
  order by m.recorded_at
  limit greatest(p_limit, 0)
$$;

create or replace function cas_get_agent_states(p_agent_ids text[]) returns setof cas_agent_config
language sql stable set search_path = public, pg_temp as $$
  select * from cas_agent_config where agent_id = any (p_agent_ids) and is_active
$$;

create or replace function cas_agent_state_history(p_agent_id text, p_limit int default 50)
returns setof cas_agent_config
language sql stable set search_path = public, pg_temp as $$
  select * from cas_agent_config where agent_id = p_agent_id order by version desc limit greatest(p_limit, 0)
$$;

create or replace function cas_list_agents(p_ids text[] default null)
returns setof cas_agents_view
language sql stable set search_path = public, pg_temp as $$
  select * from cas_agents_view where p_ids is null or id = any (p_ids) order by id
$$;

-- The longest prefix of an ordered log's first p_limit rows after p_after that is older than
-- p_cutoff: the last position of it, or null when the first row is already recent.
create or replace function cas_old_prefix_end(
  p_positions bigint[],
  p_times timestamptz[],
  p_cutoff timestamptz
) returns bigint
language sql immutable set search_path = public, pg_temp as $$
  select max(position) from (
    select position, bool_and(at < p_cutoff) over (order by position) as old
    from unnest(p_positions, p_times) as x(position, at)
  ) prefix where old
$$;

-- One batch of retention: at most p_batch_size rows of each kind, in one short transaction.
-- Returns how many rows of each kind were deleted, or skipped = true when another process is
-- pruning right now (a transaction-level advisory try-lock: nobody waits for it). Finished tasks
-- are taken with SKIP LOCKED, so the queue never waits for retention, and retention never waits
-- for a task someone holds. The caller repeats until a batch deletes nothing.
create or replace function cas_prune_history(p_retention_days int, p_batch_size int default 500)
returns table (skipped boolean, tasks int, events int, logs int, metric_points int)
language plpgsql set search_path = public, pg_temp as $$
declare
  v_cutoff timestamptz := now() - make_interval(days => p_retention_days);
  v_limit int := greatest(p_batch_size, 0);
  v_task_ids uuid[];
  v_through bigint;
  v_positions bigint[];
  v_times timestamptz[];
begin
  if p_retention_days is null or p_retention_days < 1 then
    raise exception using errcode = 'CASBI', message = 'retention days must be at least 1';
  end if;
  if not pg_try_advisory_xact_lock(4846791580151137003) then
    return query select true, 0, 0, 0, 0;
    return;
  end if;
  skipped := false;

  -- Tasks finished before the cutoff, agent by agent along (agent_id, finished_at).
  select array_agg(old.id) into v_task_ids from (
    select t.id from cas_agents a
    cross join lateral (
      select id from cas_tasks
      where agent_id = a.id and finished_at < v_cutoff
      limit v_limit
      for update skip locked
    ) t
    limit v_limit
  ) old;
  tasks := coalesce(cardinality(v_task_ids), 0);
  if tasks > 0 then
    -- Lock order: task rows (above), then their agents' rows by id, as the delete trigger needs.
    perform 1 from cas_agent_status
      where agent_id in (select agent_id from cas_tasks where id = any (v_task_ids))
      order by agent_id for no key update;
    delete from cas_tasks where id = any (v_task_ids);
  end if;

  -- Events: the oldest prefix, by seq, so the kept log stays contiguous.
  select pruned_through into v_through from cas_retention where log = 'events' for update;
  select array_agg(seq order by seq), array_agg(created_at order by seq) into v_positions, v_times
    from (select seq, created_at from cas_agent_events where seq > v_through order by seq limit v_limit) f;
  v_through := coalesce(cas_old_prefix_end(v_positions, v_times, v_cutoff), v_through);
  delete from cas_agent_events where seq <= v_through;
  get diagnostics events = row_count;
  update cas_retention set pruned_through = v_through where log = 'events' and pruned_through < v_through;

  -- Log entries: the oldest prefix, by id.
  select pruned_through into v_through from cas_retention where log = 'logs' for update;
  select array_agg(id order by id), array_agg(created_at order by id) into v_positions, v_times
    from (select id, created_at from cas_agent_logs where id > v_through order by id limit v_limit) f;
  v_through := coalesce(cas_old_prefix_end(v_positions, v_times, v_cutoff), v_through);
  delete from cas_agent_logs where id <= v_through;
  get diagnostics logs = row_count;
  update cas_retention set pruned_through = v_through where log = 'logs' and pruned_through < v_through;

  -- Metric points: the oldest prefix by id (points are written in time order).
  select array_agg(id order by id), array_agg(recorded_at order by id) into v_positions, v_times
    from (select id, recorded_at from cas_metrics_timeseries order by id limit v_limit) f;
  v_through := cas_old_prefix_end(v_positions, v_times, v_cutoff);
  delete from cas_metrics_timeseries where id <= v_through;
  get diagnostics metric_points = row_count;

  return next;
end $$;

-- Access, as in 20261125000400_cas_security.sql: RLS on the new tables, functions for the service only.
alter table cas_task_counts enable row level security;
alter table cas_task_rollups enable row level security;
alter table cas_retention enable row level security;

do $$
declare
  v_table text;
  v_fn regprocedure;
begin
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    foreach v_table in array array['cas_task_counts', 'cas_task_rollups', 'cas_retention'] loop
      if not exists (select 1 from pg_policies where schemaname = current_schema() and tablename = v_table and policyname = 'authenticated read') then
        execute format('create policy "authenticated read" on %I for select to authenticated using (true)', v_table);
      end if;
    end loop;
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    foreach v_table in array array['cas_task_counts', 'cas_task_rollups', 'cas_retention'] loop
      if not exists (select 1 from pg_policies where schemaname = current_schema() and tablename = v_table and policyname = 'service role all') then
        execute format('create policy "service role all" on %I for all to service_role using (true) with check (true)', v_table);
      end if;
    end loop;
  end if;

  for v_fn in
    select p.oid::regprocedure from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = current_schema()
      and p.proname in ('cas_hour_of', 'cas_count_task_changes', 'cas_count_inserted_tasks',
                        'cas_count_updated_tasks', 'cas_count_deleted_tasks', 'cas_check_cursor',
                        'cas_old_prefix_end', 'cas_prune_history')
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
