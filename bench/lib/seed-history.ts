/**
 * Long history in one statement per table (generate_series), for the history benchmark and
 * scripts/explain-history.ts: finished tasks spread over the built-in agents, events after the
 * current head of the log, log entries. Written with plain SQL so it fills any schema version.
 */
import pg from 'pg';

export interface HistorySize {
  tasks: number;
  events: number;
  logs: number;
}

export async function seedHistory(url: string, size: HistorySize): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const agents = `(select array_agg(id order by id) as a from cas_agents) as ag`;
    await client.query(
      `insert into cas_tasks (agent_id, action, status, attempts, created_at, started_at, finished_at, duration_ms)
       select ag.a[1 + n % cardinality(ag.a)], 'ping', case when n % 10 = 0 then 'failed' else 'succeeded' end, 1,
              now() - n * interval '10 seconds', now() - n * interval '10 seconds',
              now() - n * interval '10 seconds' + interval '5 milliseconds', 5
       from generate_series(1, $1::int) as n, ${agents}`,
      [size.tasks],
    );
    await client.query(
      `with head as (select last_seq from cas_event_sequence)
       insert into cas_agent_events (seq, event_type, agent_id, payload, created_at)
       select head.last_seq + n, 'task_progress', ag.a[1 + n % cardinality(ag.a)], jsonb_build_object('progress', 0.5),
              now() - ($1::int - n) * interval '1 second'
       from generate_series(1, $1::int) as n, head, ${agents}`,
      [size.events],
    );
    await client.query('update cas_event_sequence set last_seq = (select max(seq) from cas_agent_events)');
    await client.query(
      `insert into cas_agent_logs (agent_id, level, message, created_at)
       select ag.a[1 + n % cardinality(ag.a)], 'info', 'entry ' || n, now() - ($1::int - n) * interval '1 second'
       from generate_series(1, $1::int) as n, ${agents}`,
      [size.logs],
    );
    // The task counters' deltas folded into their totals, as a worker does every second (a
    // deployment reads folded totals; this API-only benchmark runs no worker). Skipped on schema
    // versions before the fold existed.
    await client.query(
      `do $$ begin
         if exists (select 1 from pg_proc where proname = 'cas_fold_task_counters') then
           perform cas_fold_task_counters();
         end if;
       end $$`,
    );
    await client.query('analyze');
  } finally {
    await client.end();
  }
}
