/**
 * Database round trips per dashboard request, with 8 and with 200 agents: the runtime runs in
 * this process on a database whose every statement is counted (the wrapper test/server/harness.ts
 * uses for the DataLoader test), and the query goes through the real yoga instance.
 */
import { loadConfig } from '../src/config.js';
import { openPostgres } from '../src/db/postgres.js';
import { silentLogger } from '../src/logger.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { buildApp } from '../src/server/app.js';
import { BUILT_IN_AGENTS, registerBenchAgents } from './fixtures.js';
import { QUERIES } from './http.js';
import { progress } from './lib/progress.js';
import { summarize } from './lib/stats.js';
import { countingDatabase, type RoundTripCounter } from '../src/db/counting-database.js';

export interface RoundTripRun {
  agents: number;
  roundTrips: number;
  /** Sequential requests in process (no HTTP): median and p99 in ms. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  responseBytes: number;
}

export interface RoundTripResults {
  runs: RoundTripRun[];
}

export async function runRoundTrips(databaseUrl: string, samples: number): Promise<RoundTripResults> {
  const counter: RoundTripCounter = { count: 0 };
  const config = loadConfig({ DATABASE_URL: databaseUrl, CAS_WORKERS: '0', LOG_LEVEL: 'silent', PORT: '0' });
  const logger = silentLogger();
  const database = countingDatabase(openPostgres({ connectionString: databaseUrl }), counter);
  const runtime = await createRuntime({ config, logger, database });
  const app = buildApp({ config, runtime, logger });
  const body = JSON.stringify({ query: QUERIES.dashboard });

  const request = async () => {
    const response = await app.yoga.fetch('http://bench.local/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const text = await response.text();
    const parsed = JSON.parse(text) as { data?: { agents: unknown[] }; errors?: unknown };
    if (parsed.errors || !parsed.data) throw new Error(`dashboard query failed: ${text.slice(0, 500)}`);
    return { agents: parsed.data.agents.length, bytes: Buffer.byteLength(text) };
  };

  const measure = async (): Promise<RoundTripRun> => {
    counter.count = 0;
    const { agents, bytes } = await request();
    const roundTrips = counter.count;
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const started = performance.now();
      await request();
      times.push(performance.now() - started);
    }
    const latency = summarize(times);
    return { agents, roundTrips, latencyP50Ms: latency.p50, latencyP99Ms: latency.p99, responseBytes: bytes };
  };

  try {
    const runs: RoundTripRun[] = [];
    runs.push(await measure());
    progress(`round trips: ${runs[0]!.agents} agents → ${runs[0]!.roundTrips} per dashboard request`);
    // 192 more agents, a tenth of them with state and a task, as test/graphql/dataloader.test.ts does.
    await registerBenchAgents(runtime, 192, { waitForTasks: false });
    runs.push(await measure());
    progress(`round trips: ${runs[1]!.agents} agents → ${runs[1]!.roundTrips} per dashboard request`);
    if (runs[0]!.agents !== BUILT_IN_AGENTS.length) {
      throw new Error(`expected ${BUILT_IN_AGENTS.length} agents to start with, saw ${runs[0]!.agents}`);
    }
    return { runs };
  } finally {
    await app.stop();
    await runtime.shutdown({ deadlineMs: 0 });
  }
}
