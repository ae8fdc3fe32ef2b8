/** The CAS task queue as a QueueDriver, on any database (PostgreSQL server or PGlite). */
import type { Queryable } from '../../src/db/database.js';
import type { QueueDriver } from './queue-measure.js';

export const AGENTS = ['marketer', 'analyst', 'planner', 'developer', 'tester', 'qa', 'engineer', 'security'];

/** `count` ping tasks spread over the eight built-in agents, in one statement (one transaction). */
const ENQUEUE_MANY = `
  select count(*)::int as n
  from generate_series(1, $1::int) as g
  cross join lateral cas_enqueue_task(($2::text[])[1 + g % 8], 'ping', null) as t`;

export function casQueueDriver(
  label: string,
  db: Queryable,
  enqueueOne: (agentId: string) => Promise<void>,
): QueueDriver {
  return {
    label,
    enqueueOne: (index) => enqueueOne(AGENTS[index % AGENTS.length]!),
    async enqueueMany(count) {
      await db.query(ENQUEUE_MANY, [count, AGENTS]);
    },
    async anyLeft() {
      // Whether a queued or a running task exists: each `exists` stops at its first row, found
      // through the partial indexes of queued and running tasks (the claim's and the lease
      // sweep's) once few are left, so the probe does not grow with the finished history.
      const [row] = await db.query<{ left: boolean }>(
        `select exists (select 1 from cas_tasks where status = 'queued')
             or exists (select 1 from cas_tasks where status = 'running') as left`,
      );
      return row!.left;
    },
    async remaining() {
      // From the task counters (kept in the same transactions as the tasks): no scan of the
      // finished tasks, whose number only grows (graphile-worker deletes its finished jobs, so its
      // count scans only what is left).
      const [row] = await db.query<{ n: number }>(
        `select coalesce(sum(tasks), 0)::int as n from cas_task_counts where status in ('queued', 'running')`,
      );
      return row!.n;
    },
    async startLatencies() {
      const rows = await db.query<{ ms: number }>(
        `select (extract(epoch from started_at - created_at) * 1000)::float8 as ms
         from cas_tasks where started_at is not null order by seq`,
      );
      return rows.map((row) => row.ms);
    },
  };
}

export interface CasCheck {
  tasks: number;
  succeeded: number;
  /** Events per type for the tasks (queued, started, completed...). */
  events: Record<string, number>;
  /** Tasks with more than one final event (completed/failed/cancelled): must be 0. */
  tasksWithSeveralFinalEvents: number;
  /** Tasks in a final status without a final event: must be 0. */
  finishedTasksWithoutFinalEvent: number;
  /** Event seq runs 1..N with no gap. */
  eventLogContiguous: boolean;
  durationMetricRows: number;
  /** Database-side rate: tasks / (last finished_at - first started_at), of the measured backlog. */
  databaseTasksPerSecond: number;
}

/** What the run left in the database: every task done once, every event written. */
export async function checkCasRun(db: Queryable, rateOverLast?: number): Promise<CasCheck> {
  const [counts] = await db.query<{ tasks: number; succeeded: number; metrics: number }>(`
    select count(*)::int as tasks,
           count(*) filter (where status = 'succeeded')::int as succeeded,
           (select count(*)::int from cas_metrics_timeseries where metric_name = 'task_duration_ms') as metrics
    from cas_tasks`);
  // The database-side rate of the last `rateOverLast` tasks (a measured backlog after a warm-up).
  const [rate] = await db.query<{ tasks: number; seconds: number }>(
    `select count(*)::int as tasks, extract(epoch from max(finished_at) - min(started_at))::float8 as seconds
     from (select started_at, finished_at from cas_tasks order by seq desc limit $1) as measured`,
    [rateOverLast ?? counts!.tasks],
  );
  const events = await db.query<{ type: string; n: number }>(
    `select event_type as type, count(*)::int as n from cas_agent_events
     where task_id is not null group by event_type order by event_type`,
  );
  const [finals] = await db.query<{ several: number; missing: number }>(`
    select count(*) filter (where finals > 1)::int as several,
           count(*) filter (where finals = 0 and status in ('succeeded', 'failed', 'cancelled'))::int as missing
    from (
      select t.status, (select count(*) from cas_agent_events e
                        where e.task_id = t.id
                          and e.event_type in ('task_completed', 'task_failed', 'task_cancelled')) as finals
      from cas_tasks t
    ) as per_task`);
  const [seq] = await db.query<{ contiguous: boolean }>(
    `select coalesce(max(seq), 0) = count(*) and coalesce(min(seq), 1) = 1 as contiguous from cas_agent_events`,
  );
  return {
    tasks: counts!.tasks,
    succeeded: counts!.succeeded,
    events: Object.fromEntries(events.map((row) => [row.type, row.n])),
    tasksWithSeveralFinalEvents: finals!.several,
    finishedTasksWithoutFinalEvent: finals!.missing,
    eventLogContiguous: seq!.contiguous,
    durationMetricRows: counts!.metrics,
    databaseTasksPerSecond: rate!.seconds > 0 ? rate!.tasks / rate!.seconds : Number.NaN,
  };
}
