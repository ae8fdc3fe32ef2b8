/**
 * Long history: the dashboard query, a page of logs and a page of events on a database holding
 * 1 million events, 1 million log entries and 100,000 finished tasks, through the real yoga
 * instance in this process (no HTTP), sequentially (target: p50 ≤ 10 ms); then what the history
 * costs the write path: one worker process draining no-op tasks there and on a fresh database, in
 * alternating rounds.
 */
import { loadConfig } from '../src/config.js';
import { encodeCursor } from '../src/domains/pagination.js';
import { silentLogger } from '../src/logger.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { buildApp } from '../src/server/app.js';
import { openPostgres } from '../src/db/postgres.js';
import { QUERIES } from './http.js';
import { casQueueDriver } from './lib/cas-queue.js';
import { measureThroughput } from './lib/queue-measure.js';
import { startCasWorkers } from './tasks.js';
import { seedHistory, type HistorySize } from './lib/seed-history.js';
import { progress } from './lib/progress.js';
import { summarize } from './lib/stats.js';

export interface HistoryRun {
  query: string;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

export interface HistoryWriteSettings {
  /** Tasks per measured drain, and per worker in the (uncounted) warm-up drain before the first. */
  tasks: number;
  warmupTasks: number;
  /** Drains per database, alternating which goes first. */
  rounds: number;
  concurrency: number;
  timeoutSeconds: number;
}

/** One worker process's no-op tasks/s on the long-history database and on a fresh one. */
export interface HistoryWrites {
  settings: HistoryWriteSettings;
  historyTasksPerSecond: number;
  freshTasksPerSecond: number;
  /** History over fresh: what the history costs each task's writes (index pages, cache). */
  ratio: number;
}

export interface HistoryResults {
  size: HistorySize;
  seedSeconds: number;
  runs: HistoryRun[];
  writes?: HistoryWrites;
}

/** What the history section reads, by the name the report shows; pages start after the given positions. */
const readsAfter = (logId: number, eventSeq: number): Record<string, string> => ({
  dashboard: QUERIES.dashboard,
  'log page (one agent, 50, mid-history)': `{ logs(agentId: "analyst", first: 50, after: "${encodeCursor('log', logId)}") { edges { cursor node { id level message createdAt } } } }`,
  'event page (50, mid-history)': `{ events(first: 50, after: "${encodeCursor('event', eventSeq)}") { edges { cursor node { id type agentId createdAt } } } }`,
  'tasks page with totalCount': '{ tasks(first: 20) { totalCount edges { node { id status } } } }',
});

/**
 * Drains of no-op tasks by one worker process per database, the long-history one and a fresh copy
 * of the template, in alternating rounds: each task writes its row three times and three events,
 * and every write adds entries to indexes as large as the history.
 */
async function measureWrites(
  historyUrl: string,
  freshUrl: string,
  settings: HistoryWriteSettings,
): Promise<HistoryWrites> {
  const sides = [
    { label: 'long history', url: historyUrl, done: 0, seconds: 0 },
    { label: 'fresh database', url: freshUrl, done: 0, seconds: 0 },
  ];
  const workers = (
    await Promise.all(sides.map((side) => startCasWorkers(side.url, 1, settings.concurrency)))
  ).flat();
  const dbs = sides.map((side) =>
    openPostgres({ connectionString: side.url, maxConnections: 2, applicationName: 'cas-bench' }),
  );
  try {
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const index of order) {
        const side = sides[index]!;
        const label = `history: 1 worker, ${side.label}`;
        const driver = casQueueDriver(label, dbs[index]!, async () => undefined);
        const result = await measureThroughput(
          driver,
          settings.tasks,
          settings.timeoutSeconds * 1000,
          round === 0 ? settings.warmupTasks : 0,
        );
        if (result.timedOut) throw new Error(`${label}: ${result.tasks - result.completed} task(s) not done`);
        side.done += result.completed;
        side.seconds += result.seconds;
        progress(`${label}: ${result.tasksPerSecond.toFixed(0)} tasks/s`);
      }
    }
    await Promise.all(workers.map((worker) => worker.stop()));
    // Every drained task succeeded: a drain of failures would be no measure. (The tasks section
    // checks the whole trail; the seeded history here has no events per task to check against.)
    const drained = settings.warmupTasks + settings.rounds * settings.tasks;
    for (const [index, side] of sides.entries()) {
      const [row] = await dbs[index]!.query<{ succeeded: number }>(
        `select count(*) filter (where status = 'succeeded')::int as succeeded
         from (select status from cas_tasks order by seq desc limit $1) as drained`,
        [drained],
      );
      if (row!.succeeded !== drained)
        throw new Error(`history: 1 worker, ${side.label}: ${row!.succeeded}/${drained} tasks succeeded`);
    }
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await Promise.all(dbs.map((db) => db.close()));
  }
  const [history, fresh] = sides.map((side) => side.done / side.seconds) as [number, number];
  return { settings, historyTasksPerSecond: history, freshTasksPerSecond: fresh, ratio: history / fresh };
}

export async function runHistory(
  databaseUrl: string,
  size: HistorySize,
  samples: number,
  writes: { freshUrl: string; settings: HistoryWriteSettings },
): Promise<HistoryResults> {
  // Pages start half-way through the history, where a scan from either end costs most.
  const reads = readsAfter(Math.floor(size.logs / 2), Math.floor(size.events / 2));
  const seeding = performance.now();
  progress(`history: seeding ${size.events} events, ${size.logs} log entries, ${size.tasks} tasks`);
  await seedHistory(databaseUrl, size);
  const seedSeconds = (performance.now() - seeding) / 1000;
  progress(`history: seeded in ${seedSeconds.toFixed(1)} s`);

  const config = loadConfig({ DATABASE_URL: databaseUrl, CAS_WORKERS: '0', LOG_LEVEL: 'silent', PORT: '0' });
  const logger = silentLogger();
  const runtime = await createRuntime({ config, logger });
  const app = buildApp({ config, runtime, logger });
  const request = async (query: string) => {
    const response = await app.yoga.fetch('http://bench.local/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    const text = await response.text();
    if ((JSON.parse(text) as { errors?: unknown }).errors)
      throw new Error(`query failed: ${text.slice(0, 500)}`);
    return text;
  };
  const runs: HistoryRun[] = [];
  try {
    for (const [name, base] of Object.entries(reads)) {
      const query = base;
      await request(query);
      const times: number[] = [];
      for (let i = 0; i < samples; i++) {
        const started = performance.now();
        await request(query);
        times.push(performance.now() - started);
      }
      const latency = summarize(times);
      runs.push({ query: name, latencyP50Ms: latency.p50, latencyP99Ms: latency.p99 });
      progress(`history: ${name}: p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms`);
    }
  } finally {
    await app.stop();
    await runtime.shutdown({ deadlineMs: 0 });
  }
  const measured = await measureWrites(databaseUrl, writes.freshUrl, writes.settings);
  progress(`history: 1 worker on the long history over a fresh database: ${measured.ratio.toFixed(2)}x`);
  return { size, seedSeconds, runs, writes: measured };
}
