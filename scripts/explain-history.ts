/**
 * Times the history reads on a PostgreSQL database with long history, and prints their plans:
 *
 *   npx tsx scripts/explain-history.ts <database url> [--seed]
 *
 * --seed first adds 300,000 events, log entries and finished tasks (bench/lib/seed-history.ts).
 * Each read runs 5 times after a warm-up; the median execution time is printed. Run it on a
 * database migrated with an older schema to compare (the calls are the same).
 */
import pg from 'pg';
import { seedHistory } from '../bench/lib/seed-history.js';

const ROWS = 300_000;
const RUNS = 5;

const READS: Record<string, string> = {
  'log tail (after a recent id, 500)': `select * from cas_list_logs(p_after_id => (select max(id) - 100 from cas_agent_logs), p_limit => 500)`,
  'log page, newest first (50)': `select * from cas_list_logs(p_limit => 51, p_newest_first => true)`,
  'log page of one agent (50)': `select * from cas_list_logs(p_agent_id => 'analyst', p_limit => 51)`,
  'event page after a cursor (50)': `select * from cas_list_events(p_after_seq => (select max(seq) - 1000 from cas_agent_events), p_limit => 51)`,
  'tasks totalCount': `select cas_count_tasks()`,
  'tasks totalCount of one agent': `select cas_count_tasks(p_agent_id => 'analyst', p_statuses => array['succeeded'])`,
  'metrics of 8 agents, all time': `select * from cas_agent_metrics((select array_agg(id) from cas_agents))`,
  'metrics of 8 agents, last 90 minutes': `select * from cas_agent_metrics((select array_agg(id) from cas_agents), now() - interval '90 minutes', now())`,
};

const [url, ...flags] = process.argv.slice(2);
if (!url) {
  console.error('usage: npx tsx scripts/explain-history.ts <database url> [--seed]');
  process.exit(1);
}
if (flags.includes('--seed')) await seedHistory(url, { tasks: ROWS, events: ROWS, logs: ROWS });
const client = new pg.Client({ connectionString: url });
await client.connect();
try {
  for (const [name, sql] of Object.entries(READS)) {
    const times: number[] = [];
    let plan = '';
    for (let run = 0; run <= RUNS; run += 1) {
      const { rows } = await client.query<{ 'QUERY PLAN': { 'Execution Time': number; Plan: unknown }[] }>(
        `explain (analyze, format json) ${sql}`,
      );
      const [result] = rows[0]!['QUERY PLAN'];
      if (run > 0) times.push(result!['Execution Time']);
      plan = JSON.stringify(result!.Plan).slice(0, 160);
    }
    times.sort((a, b) => a - b);
    console.log(
      `${name.padEnd(40)} ${times[Math.floor(times.length / 2)]!.toFixed(2).padStart(9)} ms   ${plan}`,
    );
  }
} finally {
  await client.end();
}
