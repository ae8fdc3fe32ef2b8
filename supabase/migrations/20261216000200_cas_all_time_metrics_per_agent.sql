-- An agent's all-time metrics are one row, kept by the fold, instead of a sum over every hour of
-- its history.
--
-- cas_agent_metrics without a range (the dashboard's `metrics { totalRuns successRate }`) summed
-- cas_task_rollups, a view that groups the hourly totals and the deltas not folded yet by agent
-- and hour, then summed those per agent: work that grows with every hour an agent has run tasks
-- (8 agents over a year are 70,000 hourly rows per read). On the bench's long history, 100,000
-- tasks over 279 hours, it was 8.6 ms of the dashboard's 10.5 ms.
--
-- cas_task_rollup_agent_totals holds, per agent, the sums of its folded hourly rollups: the fold
-- (cas_fold_task_counters) adds each batch of deltas to the hourly rows and to the agent's row in
-- the same statement, so the agent's row always equals the sum of its hourly rows. An all-time read
-- is that row plus the agent's deltas not folded yet (a second's worth). A range still reads the
-- hourly rollups and the tasks at its ends, as before. Like the hourly rollups, never pruned.
--
-- Lock order: the fold takes its advisory lock, then the total rows (hourly, then per agent), which
-- nothing else writes. The backfill below takes the same advisory lock first, so a fold that an
-- older process runs during the upgrade finishes before the sums are read.

create table if not exists cas_task_rollup_agent_totals (
  agent_id text primary key,
  succeeded bigint not null default 0,
  failed bigint not null default 0,
  cancelled bigint not null default 0,
  duration_ms_sum double precision not null default 0,
  duration_count bigint not null default 0
);
comment on table cas_task_rollup_agent_totals is
  'Per agent, the sums of its rows of cas_task_rollup_totals (all-time metrics), kept by the fold. Never pruned.';

select pg_advisory_xact_lock(4846791580151137004);
insert into cas_task_rollup_agent_totals (agent_id, succeeded, failed, cancelled, duration_ms_sum, duration_count)
  select agent_id, sum(succeeded), sum(failed), sum(cancelled), sum(duration_ms_sum), sum(duration_count)
  from cas_task_rollup_totals
  group by agent_id
on conflict (agent_id) do nothing;

-- As 20261212000100_cas_counters_as_deltas.sql, adding each batch of rollup deltas to the agents'
-- all-time rows too.
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
  ), written_per_agent as (
    insert into cas_task_rollup_agent_totals as a
      (agent_id, succeeded, failed, cancelled, duration_ms_sum, duration_count)
      select agent_id, sum(succeeded), sum(failed), sum(cancelled), sum(duration_ms_sum), sum(duration_count)
      from summed group by agent_id order by agent_id
    on conflict (agent_id) do update
      set succeeded = a.succeeded + excluded.succeeded,
          failed = a.failed + excluded.failed,
          cancelled = a.cancelled + excluded.cancelled,
          duration_ms_sum = a.duration_ms_sum + excluded.duration_ms_sum,
          duration_count = a.duration_count + excluded.duration_count
  )
  select coalesce(sum(deltas), 0) into v_rollups from summed;
  return v_counts + v_rollups;
end $$;

-- As 20261203000700_cas_agent_metrics_plan_cache.sql, with the all-time sums read from the agents'
-- rows (and the deltas not folded yet) instead of every hourly rollup. Each source is gated by a
-- condition on the parameters alone: PostgreSQL makes it a one-time filter that skips the others.
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
language plpgsql stable set search_path = public, pg_temp as $$
begin
  return query
  with bounds as (
    -- [whole_from, whole_to): the whole hours inside the range.
    select coalesce(case when cas_hour_of(p_from) = p_from then p_from
                         else cas_hour_of(p_from) + interval '1 hour' end,
                    '-infinity'::timestamptz) as whole_from,
           coalesce(cas_hour_of(p_to), 'infinity'::timestamptz) as whole_to
  ),
  parts as (
    -- All time: the agents' rows and their deltas not folded yet.
    select t.agent_id, t.succeeded, t.failed, t.cancelled, t.duration_ms_sum, t.duration_count
    from cas_task_rollup_agent_totals t
    where p_from is null and p_to is null and t.agent_id = any (p_agent_ids)
    union all
    select d.agent_id, d.succeeded, d.failed, d.cancelled, d.duration_ms_sum, d.duration_count
    from cas_task_rollup_deltas d
    where p_from is null and p_to is null and d.agent_id = any (p_agent_ids)
    union all
    -- A range: the whole hours inside it from the rollups, its partial hours from the tasks.
    select r.agent_id, r.succeeded, r.failed, r.cancelled, r.duration_ms_sum, r.duration_count
    from cas_task_rollups r, bounds b
    where (p_from is not null or p_to is not null)
      and r.agent_id = any (p_agent_ids) and r.hour >= b.whole_from and r.hour < b.whole_to
    union all
    select t.agent_id,
           (t.status = 'succeeded')::int, (t.status = 'failed')::int, (t.status = 'cancelled')::int,
           case when t.status in ('succeeded', 'failed') then coalesce(t.duration_ms, 0) else 0 end,
           (t.status in ('succeeded', 'failed') and t.duration_ms is not null)::int
    from cas_tasks t, bounds b
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
  group by a.id, s.started_at;
end $$;

-- Access, as for the other totals (20261212000100_cas_counters_as_deltas.sql): RLS, read by
-- signed-in users (counts per agent, nothing of any task), written by the service.
alter table cas_task_rollup_agent_totals enable row level security;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'authenticated')
     and not exists (select 1 from pg_policies where schemaname = current_schema()
                     and tablename = 'cas_task_rollup_agent_totals' and policyname = 'authenticated read') then
    create policy "authenticated read" on cas_task_rollup_agent_totals for select to authenticated using (true);
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role')
     and not exists (select 1 from pg_policies where schemaname = current_schema()
                     and tablename = 'cas_task_rollup_agent_totals' and policyname = 'service role all') then
    create policy "service role all" on cas_task_rollup_agent_totals for all to service_role using (true) with check (true);
  end if;
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke all on cas_task_rollup_agent_totals from anon;
  end if;
end $$;

select cas_restrict_function_access();
