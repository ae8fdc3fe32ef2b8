-- Agent metrics (the dashboard's costliest read) keep their plan between calls.
--
-- A `language sql` function with a SET clause is never inlined, and PostgreSQL plans its body
-- again on every call: for cas_agent_metrics, about 1.1 ms of planning on top of 0.7 ms of work
-- (pgbench, prepared, this machine). PL/pgSQL caches the plan of `return query` per session.
-- Same arguments, same rows; only the language changes (a function's language cannot be altered,
-- so it is defined again with the same body).
--
-- Redefined here: cas_agent_metrics.

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
  group by a.id, s.started_at;
end $$;

select cas_restrict_function_access();
