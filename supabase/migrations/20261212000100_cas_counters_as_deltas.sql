-- The task counters are appended as deltas, and folded into their totals once a second.
--
-- Every statement that changed tasks updated its agents' rows of cas_task_counts and
-- cas_task_rollups, after locking the agents' cas_agent_status rows. Two workers' batches on the
-- same agents therefore ran one after the other, whatever else they did: on the bench, three
-- worker processes drained fewer tasks per second than one. Now a statement appends what it
-- changed to cas_task_count_deltas and cas_task_rollup_deltas (inserts, which lock nothing another
-- insert needs), and cas_fold_task_counters moves the deltas into the totals (a worker calls it
-- every second, one folder at a time).
--
-- Readers see the same numbers: cas_task_counts and cas_task_rollups are now views that add the
-- deltas not folded yet to the totals, in one snapshot, so a fold never shows a count twice or
-- not at all. The functions and queries that read them are unchanged.
--
-- Lock order: counting takes no row lock now (20261202000200_cas_retention.sql had it take the
-- agents' status rows first, for the insert of an agent's first counter row). Folding takes its
-- advisory lock, then the total rows, which nothing else writes.

alter table cas_task_counts rename to cas_task_count_totals;
alter index cas_task_counts_pkey rename to cas_task_count_totals_pkey;
alter table cas_task_rollups rename to cas_task_rollup_totals;
alter index cas_task_rollups_pkey rename to cas_task_rollup_totals_pkey;
comment on table cas_task_count_totals is
  'Tasks per agent and status, as of the last fold; cas_task_counts adds the deltas not folded yet.';
comment on table cas_task_rollup_totals is
  'Final tasks per agent and UTC hour, as of the last fold; cas_task_rollups adds the deltas not folded yet. Never pruned.';

create table if not exists cas_task_count_deltas (
  agent_id text not null,
  status text not null,
  tasks int not null
);
comment on table cas_task_count_deltas is
  'Changes to cas_task_count_totals not folded into it yet, one row per statement, agent and status.';

create table if not exists cas_task_rollup_deltas (
  agent_id text not null,
  hour timestamptz not null,
  succeeded int not null,
  failed int not null,
  cancelled int not null,
  duration_ms_sum double precision not null,
  duration_count int not null
);
comment on table cas_task_rollup_deltas is
  'Changes to cas_task_rollup_totals not folded into it yet, one row per statement, agent and hour.';

create or replace view cas_task_counts with (security_invoker = true) as
select c.agent_id, c.status, sum(c.tasks)::bigint as tasks
from (
  select agent_id, status, tasks from cas_task_count_totals
  union all
  select agent_id, status, tasks from cas_task_count_deltas
) c
group by c.agent_id, c.status;
comment on view cas_task_counts is
  'Tasks per agent and status: the totals plus the deltas not folded yet. totalCount reads it instead of counting rows.';

create or replace view cas_task_rollups with (security_invoker = true) as
select r.agent_id, r.hour,
       sum(r.succeeded)::bigint as succeeded, sum(r.failed)::bigint as failed,
       sum(r.cancelled)::bigint as cancelled, sum(r.duration_ms_sum) as duration_ms_sum,
       sum(r.duration_count)::bigint as duration_count
from (
  select agent_id, hour, succeeded, failed, cancelled, duration_ms_sum, duration_count
  from cas_task_rollup_totals
  union all
  select agent_id, hour, succeeded, failed, cancelled, duration_ms_sum, duration_count
  from cas_task_rollup_deltas
) r
group by r.agent_id, r.hour;
comment on view cas_task_rollups is
  'Tasks that reached a final status, per agent and UTC hour of finished_at: the totals plus the deltas not folded yet.';

-- Applies one statement's changes to the counters: a +1 or -1 per task and status it entered or
-- left (p_agent_ids, p_statuses, p_deltas) and the tasks that became final in it (p_finished_*).
create or replace function cas_count_task_changes(
  p_agent_ids text[],
  p_statuses text[],
  p_deltas int[],
  p_finished_agent_ids text[],
  p_finished_statuses text[],
  p_finished_at timestamptz[],
  p_finished_durations double precision[]
) returns void
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
  insert into cas_task_count_deltas (agent_id, status, tasks)
    select d.agent_id, d.status, sum(d.delta)
    from unnest(p_agent_ids, p_statuses, p_deltas) as d(agent_id, status, delta)
    group by d.agent_id, d.status
    having sum(d.delta) <> 0;
  if p_finished_agent_ids is null then
    return;
  end if;
  insert into cas_task_rollup_deltas (agent_id, hour, succeeded, failed, cancelled, duration_ms_sum, duration_count)
    select f.agent_id, cas_hour_of(f.finished_at),
           count(*) filter (where f.status = 'succeeded'),
           count(*) filter (where f.status = 'failed'),
           count(*) filter (where f.status = 'cancelled'),
           coalesce(sum(f.duration_ms) filter (where f.status in ('succeeded', 'failed')), 0),
           count(f.duration_ms) filter (where f.status in ('succeeded', 'failed'))
    from unnest(p_finished_agent_ids, p_finished_statuses, p_finished_at, p_finished_durations)
      as f(agent_id, status, finished_at, duration_ms)
    group by f.agent_id, cas_hour_of(f.finished_at);
end $$;

-- As 20261209000100_cas_lean_insert_count.sql: new tasks that are not final are one insert.
create or replace function cas_count_inserted_tasks() returns trigger
language plpgsql
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
  if exists (select 1 from new_tasks n where n.finished_at is not null) then
    perform cas_count_task_changes(
      array_agg(n.agent_id), array_agg(n.status), array_agg(1),
      array_agg(n.agent_id) filter (where n.finished_at is not null),
      array_agg(n.status) filter (where n.finished_at is not null),
      array_agg(n.finished_at) filter (where n.finished_at is not null),
      array_agg(n.duration_ms) filter (where n.finished_at is not null))
    from new_tasks n;
    return null;
  end if;
  insert into cas_task_count_deltas (agent_id, status, tasks)
    select n.agent_id, n.status, count(*) from new_tasks n group by n.agent_id, n.status;
  return null;
end $$;

-- Moves the deltas into the totals; returns how many delta rows it folded. One folder at a time
-- (a transaction-level advisory try-lock): another caller meanwhile folds nothing and returns 0,
-- and the deltas it would have folded wait for the next fold. The deltas it deletes are those its
-- snapshot sees; rows appended meanwhile stay for the next fold. Only folding writes the totals,
-- so the insert of a first total cannot race another.
create or replace function cas_fold_task_counters() returns int
language plpgsql
set search_path = public, pg_temp
as $$
declare
  v_counts int;
  v_rollups int;
begin
  if not pg_try_advisory_xact_lock(4846791580151137004) then
    return 0;
  end if;
  with folded as (
    delete from cas_task_count_deltas returning agent_id, status, tasks
  ), summed as (
    select agent_id, status, sum(tasks) as tasks, count(*) as deltas
    from folded group by agent_id, status
  ), updated as (
    -- An update, not an upsert: an INSERT checks `tasks >= 0` on the row it proposes, before it
    -- finds the conflict, and a delta may well be negative.
    update cas_task_count_totals c set tasks = c.tasks + s.tasks
    from summed s where c.agent_id = s.agent_id and c.status = s.status
    returning c.agent_id, c.status
  ), inserted as (
    insert into cas_task_count_totals (agent_id, status, tasks)
      select s.agent_id, s.status, s.tasks from summed s
      where s.tasks <> 0
        and not exists (select 1 from updated u where u.agent_id = s.agent_id and u.status = s.status)
  )
  select coalesce(sum(deltas), 0) into v_counts from summed;
  with folded as (
    delete from cas_task_rollup_deltas
    returning agent_id, hour, succeeded, failed, cancelled, duration_ms_sum, duration_count
  ), summed as (
    select agent_id, hour, sum(succeeded) as succeeded, sum(failed) as failed,
           sum(cancelled) as cancelled, sum(duration_ms_sum) as duration_ms_sum,
           sum(duration_count) as duration_count, count(*) as deltas
    from folded group by agent_id, hour
  ), written as (
    insert into cas_task_rollup_totals as r
      (agent_id, hour, succeeded, failed, cancelled, duration_ms_sum, duration_count)
      select agent_id, hour, succeeded, failed, cancelled, duration_ms_sum, duration_count
      from summed order by agent_id, hour
    on conflict (agent_id, hour) do update
      set succeeded = r.succeeded + excluded.succeeded,
          failed = r.failed + excluded.failed,
          cancelled = r.cancelled + excluded.cancelled,
          duration_ms_sum = r.duration_ms_sum + excluded.duration_ms_sum,
          duration_count = r.duration_count + excluded.duration_count
  )
  select coalesce(sum(deltas), 0) into v_rollups from summed;
  return v_counts + v_rollups;
end $$;

-- Access, as for the totals (20261202000200_cas_retention.sql): RLS, read by signed-in users
-- (counts per agent, nothing of any task), written by the service.
alter table cas_task_count_deltas enable row level security;
alter table cas_task_rollup_deltas enable row level security;

do $$
declare
  v_table text;
begin
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    foreach v_table in array array['cas_task_count_deltas', 'cas_task_rollup_deltas'] loop
      if not exists (select 1 from pg_policies where schemaname = current_schema() and tablename = v_table and policyname = 'authenticated read') then
        execute format('create policy "authenticated read" on %I for select to authenticated using (true)', v_table);
      end if;
    end loop;
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    foreach v_table in array array['cas_task_count_deltas', 'cas_task_rollup_deltas'] loop
      if not exists (select 1 from pg_policies where schemaname = current_schema() and tablename = v_table and policyname = 'service role all') then
        execute format('create policy "service role all" on %I for all to service_role using (true) with check (true)', v_table);
      end if;
    end loop;
  end if;
  if exists (select 1 from pg_roles where rolname = 'anon') then
    foreach v_table in array array['cas_task_count_deltas', 'cas_task_rollup_deltas', 'cas_task_counts', 'cas_task_rollups'] loop
      execute format('revoke all on %I from anon', v_table);
    end loop;
  end if;
end $$;

select cas_restrict_function_access();
