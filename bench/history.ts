/**
 * Reads with long history: the dashboard query, a page of logs and a page of events on a
 * database holding 1 million events, 1 million log entries and 100,000 finished tasks, through
 * the real yoga instance in this process (no HTTP), sequentially. Target: p50 ≤ 10 ms.
 */
import { loadConfig } from '../src/config.js';
import { encodeCursor } from '../src/domains/pagination.js';
import { silentLogger } from '../src/logger.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { buildApp } from '../src/server/app.js';
import { QUERIES } from './http.js';
import { seedHistory, type HistorySize } from './lib/seed-history.js';
import { progress } from './lib/progress.js';
import { summarize } from './lib/stats.js';

export interface HistoryRun {
  query: string;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

export interface HistoryResults {
  size: HistorySize;
  seedSeconds: number;
  runs: HistoryRun[];
}

/** What the history section reads, by the name the report shows; pages start after the given positions. */
const readsAfter = (logId: number, eventSeq: number): Record<string, string> => ({
  dashboard: QUERIES.dashboard,
  'log page (one agent, 50, mid-history)': `{ logs(agentId: "analyst", first: 50, after: "${encodeCursor('log', logId)}") { edges { cursor node { id level message createdAt } } } }`,
  'event page (50, mid-history)': `{ events(first: 50, after: "${encodeCursor('event', eventSeq)}") { edges { cursor node { id type agentId createdAt } } } }`,
  'tasks page with totalCount': '{ tasks(first: 20) { totalCount edges { node { id status } } } }',
});

export async function runHistory(
  databaseUrl: string,
  size: HistorySize,
  samples: number,
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
  try {
    const runs: HistoryRun[] = [];
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
    return { size, seedSeconds, runs };
  } finally {
    await app.stop();
    await runtime.shutdown({ deadlineMs: 0 });
  }
}
