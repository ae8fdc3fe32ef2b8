/**
 * The two runtimes side by side (issue 15's row): `src/server/main.ts` on the PostgreSQL server
 * with its in-process worker, once with `CAS_RUNTIME=custom` and once with `CAS_RUNTIME=langgraph`,
 * each on a fresh database. One client sends `executeTask(wait: true)` of `ping` over HTTP, one at
 * a time, and times the round trip. Under the LangGraph runtime a plain action runs as a one-node
 * graph, checkpointed in the same database: what the row measures.
 */
import { freePort } from '../test/support/net.js';
import { BENCH_QUOTAS_OFF, startChild } from './lib/child.js';
import { progress } from './lib/progress.js';
import { ratio, summarize, type LatencySummary } from './lib/stats.js';

export const RUNTIMES = ['custom', 'langgraph'] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

export interface RuntimeSettings {
  /** Round trips timed per runtime, after as many warm-up ones as WARM_UP_ROUND_TRIPS. */
  roundTrips: number;
}

export interface RuntimeRun {
  runtime: RuntimeName;
  /** executeTask(wait: true) sent → response received, ms. */
  roundTrip: LatencySummary;
}

export interface RuntimeResults {
  settings: RuntimeSettings;
  runs: RuntimeRun[];
  /** Runtimes whose server did not start (e.g. one not built yet), with the reason. */
  skipped: { runtime: RuntimeName; reason: string }[];
  /** LangGraph p50 over custom p50 (target ≤ 2). */
  langgraphOverCustomP50?: number;
}

const WARM_UP_ROUND_TRIPS = 20;
/** How much of a start-up failure the report quotes. */
const MAX_REASON_CHARS = 240;

const EXECUTE_AND_WAIT = `mutation {
  executeTask(input: { agentId: "marketer", action: "ping", wait: true, timeoutMs: 30000 }) { status }
}`;

async function roundTrip(url: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: EXECUTE_AND_WAIT }),
  });
  const body = (await response.json()) as { data?: { executeTask: { status: string } }; errors?: unknown };
  const elapsed = performance.now() - started;
  if (body.data?.executeTask.status !== 'SUCCEEDED')
    throw new Error(`executeTask(wait: true) answered ${JSON.stringify(body)}`);
  return elapsed;
}

async function measureRuntime(
  runtime: RuntimeName,
  databaseUrl: string,
  settings: RuntimeSettings,
): Promise<RuntimeRun> {
  const port = await freePort();
  const server = await startChild(
    'src/server/main.ts',
    {
      ...BENCH_QUOTAS_OFF,
      CAS_RUNTIME: runtime,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      // info: the start-up line is what startChild waits for.
      LOG_LEVEL: 'info',
    },
    'CAS Runtime API ready',
  );
  try {
    const url = `http://127.0.0.1:${port}/graphql`;
    for (let i = 0; i < WARM_UP_ROUND_TRIPS; i += 1) await roundTrip(url);
    const samples: number[] = [];
    for (let i = 0; i < settings.roundTrips; i += 1) samples.push(await roundTrip(url));
    return { runtime, roundTrip: summarize(samples) };
  } finally {
    await server.stop();
  }
}

export async function runRuntimes(
  databaseFor: (runtime: RuntimeName) => Promise<string>,
  settings: RuntimeSettings,
): Promise<RuntimeResults> {
  const results: RuntimeResults = { settings, runs: [], skipped: [] };
  for (const runtime of RUNTIMES) {
    progress(`runtimes: ${settings.roundTrips} executeTask(wait: true) round trips, CAS_RUNTIME=${runtime}`);
    try {
      const run = await measureRuntime(runtime, await databaseFor(runtime), settings);
      results.runs.push(run);
      progress(
        `runtimes: ${runtime} p50 ${run.roundTrip.p50.toFixed(2)} ms, p99 ${run.roundTrip.p99.toFixed(2)} ms`,
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const reason = message.replace(/\s+/g, ' ').trim().slice(0, MAX_REASON_CHARS);
      if (runtime === 'custom') throw error;
      progress(`runtimes: ${runtime} not measured: ${reason}`);
      results.skipped.push({ runtime, reason });
    }
  }
  const p50 = (runtime: RuntimeName) => results.runs.find((run) => run.runtime === runtime)?.roundTrip.p50;
  const custom = p50('custom');
  const langgraph = p50('langgraph');
  if (custom !== undefined && langgraph !== undefined)
    results.langgraphOverCustomP50 = ratio(langgraph, custom);
  return results;
}
