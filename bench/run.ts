/**
 * `npm run bench`: the whole benchmark, written to bench/REPORT.md and bench/results.json.
 *
 *   npm run bench                          # everything (about 6 minutes on 2 cores)
 *   npm run bench -- --quick               # small sizes, to check it works (about 2 minutes)
 *   npm run bench -- --only=tasks,http     # some sections (http, roundtrips, tasks, scaleout, workflows, runtimes, subscriptions, history)
 *   npm run bench -- --only=http --merge   # re-run some sections; keep the others of results.json
 *   npm run bench -- --report-only         # rewrite REPORT.md from results.json
 *
 * Needs the PostgreSQL server: BENCH_DATABASE_URL, else CAS_TEST_DATABASE_URL, else
 * postgres://postgres@127.0.0.1:5432/test. Creates cas_bench_<pid>_* databases and drops them.
 * Progress goes to stderr. Every loop is bounded; everything runs on loopback.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { runEmbedded, type EmbeddedResults } from './embedded.js';
import { addHistory, createTemplate } from './fixtures.js';
import { runHistory, type HistoryResults } from './history.js';
import { runHttp, type HttpResults } from './http.js';
import { ROOT, stopAllChildren } from './lib/child.js';
import { machineInfo, type MachineInfo } from './lib/machine.js';
import { createBenchDatabase, databaseUrl, dropBenchDatabases } from './lib/postgres.js';
import { elapsedSeconds, progress, section } from './lib/progress.js';
import { writeReport } from './report.js';
import { runRoundTrips, type RoundTripResults } from './round-trips.js';
import { runSubscriptions, type SubscriptionResults } from './subscriptions.js';
import { runTasks, type TaskResults } from './tasks.js';
import { runRuntimes, type RuntimeResults } from './runtimes.js';
import { runScaleOut, type ScaleOutResults } from './scale-out.js';
import { runWorkflows, type WorkflowResults } from './workflows.js';

const SECTIONS = [
  'http',
  'roundtrips',
  'tasks',
  'scaleout',
  'workflows',
  'runtimes',
  'subscriptions',
  'history',
  'embedded',
] as const;
type Section = (typeof SECTIONS)[number];

export interface BenchResults {
  startedAt: string;
  finishedAt?: string;
  durationSeconds?: number;
  command: string;
  quick: boolean;
  machine: MachineInfo;
  http?: HttpResults;
  roundTrips?: RoundTripResults;
  tasks?: TaskResults;
  scaleOut?: ScaleOutResults;
  runtimes?: RuntimeResults;
  workflows?: WorkflowResults;
  subscriptions?: SubscriptionResults;
  history?: HistoryResults;
  embedded?: EmbeddedResults;
  failures: { section: Section; error: string }[];
  /** The 1-minute load average before and after each section that ran. */
  sectionLoad?: { section: Section; before: number; after: number }[];
}

/** Where each section's figures live in BenchResults. */
const RESULT_KEYS = {
  http: 'http',
  roundtrips: 'roundTrips',
  tasks: 'tasks',
  scaleout: 'scaleOut',
  workflows: 'workflows',
  runtimes: 'runtimes',
  subscriptions: 'subscriptions',
  history: 'history',
  embedded: 'embedded',
} as const satisfies Record<Section, keyof BenchResults>;

const args = process.argv.slice(2);
const quick = args.includes('--quick') || process.env.BENCH_QUICK === '1';
const onlyArg = args.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
const only = onlyArg ? (onlyArg.split(',') as Section[]) : [...SECTIONS];
for (const name of only) {
  if (!SECTIONS.includes(name))
    throw new Error(`unknown section "${name}"; sections: ${SECTIONS.join(', ')}`);
}
const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));
const outputDir = process.env.BENCH_OUTPUT_DIR ?? BENCH_DIR;

const settings = {
  http: {
    connections: 50,
    durationSeconds: quick ? 3 : 10,
    warmupSeconds: quick ? 1 : 3,
    processCounts: [1, 2],
  },
  roundTripSamples: quick ? 10 : 50,
  tasks: {
    latencyTasks: quick ? 100 : 800,
    latencyRounds: quick ? 1 : 4,
    paceMs: 20,
    throughputTasks: quick ? 500 : 6000,
    throughputWarmupTasks: quick ? 200 : 3000,
    throughputRounds: quick ? 1 : 4,
    workerCounts: [1, 3],
    concurrency: 10,
    throughputTimeoutSeconds: quick ? 20 : 60,
  },
  workflows: {
    chainRuns: quick ? 10 : 50,
    chainSteps: 10,
    mapItems: quick ? 200 : 1000,
    timeoutSeconds: 120,
  },
  runtimes: { roundTrips: quick ? 50 : 300 },
  scaleOut: { tasks: quick ? 500 : 3000, clients: 30, concurrency: 10, timeoutSeconds: 120 },
  subscriptions: {
    subscriberCounts: [1, 100, 1000],
    events: quick ? 30 : 100,
    idleConnections: quick ? [200, 1000] : [1000, 5000],
    fanOutEvents: quick ? 2 : 5,
    cpuSubscribes: quick ? 200 : 1000,
    cpuSockets: 50,
  },
  embedded: { starts: quick ? 1 : 3, idleSeconds: quick ? 3 : 10 },
  history: {
    size: quick
      ? { tasks: 10_000, events: 100_000, logs: 100_000 }
      : { tasks: 100_000, events: 1_000_000, logs: 1_000_000 },
    samples: quick ? 20 : 100,
    writes: {
      tasks: quick ? 500 : 3000,
      warmupTasks: quick ? 200 : 3000,
      rounds: quick ? 1 : 3,
      concurrency: 10,
      timeoutSeconds: 120,
    },
  },
};

async function main() {
  const startedAt = new Date();
  section(`CAS Runtime API benchmark${quick ? ' (quick)' : ''}: ${only.join(', ')}`);
  const dropped = await dropBenchDatabases();
  if (dropped.length > 0) progress(`dropped ${dropped.length} database(s) a previous run left behind`);
  // The servers and workers run compiled, as npm start runs them (bench/lib/child.ts).
  execFileSync(process.execPath, ['scripts/build-server.mjs'], { cwd: ROOT, stdio: 'inherit' });
  const results: BenchResults = {
    startedAt: startedAt.toISOString(),
    command: `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
    quick,
    machine: await machineInfo(),
    failures: [],
    sectionLoad: [],
  };
  progress(
    `machine: ${results.machine.cpuModel}, ${results.machine.cores} cores, ${results.machine.memoryGiB} GiB, ` +
      `node ${results.machine.node}, ${results.machine.postgres}, load ${results.machine.loadAverageAtStart.toFixed(2)}`,
  );

  const template = await createTemplate();
  progress(`migrated template database ${template}`);

  const attempt = async (name: Section, work: () => Promise<void>) => {
    if (!only.includes(name)) return;
    const before = os.loadavg()[0]!;
    try {
      await work();
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      progress(`${name} FAILED: ${message}`);
      results.failures.push({ section: name, error: message });
      await stopAllChildren();
    }
    results.sectionLoad!.push({ section: name, before, after: os.loadavg()[0]! });
  };

  await attempt('http', async () => {
    section('HTTP: GraphQL server vs bare node:http');
    const name = await createBenchDatabase('http', template);
    progress('HTTP: giving the agents some history (5 tasks and a state each)');
    await addHistory(databaseUrl(name), 5);
    results.http = await runHttp(databaseUrl(name), settings.http);
  });
  await attempt('roundtrips', async () => {
    section('Round trips per dashboard request');
    const name = await createBenchDatabase('roundtrips', template);
    await addHistory(databaseUrl(name), 5);
    results.roundTrips = await runRoundTrips(databaseUrl(name), settings.roundTripSamples);
  });
  await attempt('tasks', async () => {
    section('Task engine: CAS vs graphile-worker, server vs embedded');
    results.tasks = await runTasks(template, settings.tasks);
  });
  await attempt('scaleout', async () => {
    section('Scale-out: 1 API + 1 worker process vs 3 + 3 on one database');
    results.scaleOut = await runScaleOut(
      async (shape) => databaseUrl(await createBenchDatabase(`scaleout_${shape.apiProcesses}`, template)),
      settings.scaleOut,
    );
  });
  await attempt('workflows', async () => {
    section('Workflows: a 10-step chain, a map of 1,000 items');
    const name = await createBenchDatabase('workflows', template);
    results.workflows = await runWorkflows(databaseUrl(name), settings.workflows);
  });
  await attempt('runtimes', async () => {
    section('Runtimes: custom vs LangGraph, executeTask(wait: true) round trips');
    results.runtimes = await runRuntimes(
      async (runtime) => databaseUrl(await createBenchDatabase(`runtime_${runtime}`, template)),
      settings.runtimes,
    );
  });
  await attempt('subscriptions', async () => {
    section('Subscriptions');
    const name = await createBenchDatabase('subscriptions', template);
    results.subscriptions = await runSubscriptions(databaseUrl(name), settings.subscriptions);
  });

  await attempt('history', async () => {
    section('Long history: reads, then writes');
    const name = await createBenchDatabase('history', template);
    const fresh = await createBenchDatabase('history_fresh', template);
    results.history = await runHistory(databaseUrl(name), settings.history.size, settings.history.samples, {
      freshUrl: databaseUrl(fresh),
      settings: settings.history.writes,
    });
  });

  await attempt('embedded', async () => {
    section('Embedded: first start to ready, idle RSS');
    results.embedded = await runEmbedded(settings.embedded);
  });

  results.finishedAt = new Date().toISOString();
  results.durationSeconds = elapsedSeconds();
  results.machine.loadAverageAtEnd = os.loadavg()[0]!;

  await mkdir(outputDir, { recursive: true });
  const written = args.includes('--merge') ? await mergedInto(results) : results;
  await writeFile(`${outputDir}/results.json`, `${JSON.stringify(written, null, 2)}\n`);
  await writeFile(`${outputDir}/REPORT.md`, writeReport(written));
  section(`done in ${Math.round(results.durationSeconds)} s: ${outputDir}REPORT.md, results.json`);
  if (results.failures.length > 0) {
    progress(
      `${results.failures.length} section(s) failed: ${results.failures.map((f) => f.section).join(', ')}`,
    );
    process.exitCode = 1;
  }
}

/**
 * `--merge`: the sections just run replace theirs in the existing results.json, the others stay;
 * the report's run line says which sections came from which run.
 */
async function mergedInto(fresh: BenchResults): Promise<BenchResults> {
  const previous = JSON.parse(await readFile(`${outputDir}/results.json`, 'utf8')) as BenchResults;
  const merged = { ...previous } as Record<string, unknown>;
  for (const name of only) merged[RESULT_KEYS[name]] = fresh[RESULT_KEYS[name]];
  const results = merged as unknown as BenchResults;
  results.sectionLoad = [
    ...(previous.sectionLoad ?? []).filter((load) => !only.includes(load.section)),
    ...(fresh.sectionLoad ?? []),
  ];
  results.failures = [...previous.failures.filter((f) => !only.includes(f.section)), ...fresh.failures];
  const when = fresh.startedAt.replace('T', ' ').slice(0, 16);
  results.command = `${previous.command}; ${only.join(', ')} from ${fresh.command} at ${when} UTC, commit ${fresh.machine.gitCommit}`;
  return results;
}

/** `--report-only`: rewrites REPORT.md from results.json (after a change to the report's layout). */
async function reportOnly() {
  const results = JSON.parse(await readFile(`${outputDir}/results.json`, 'utf8')) as BenchResults;
  for (const ratio of results.http?.ratios ?? []) {
    // Results written before the mean-latency ratio existed.
    const find = (server: string) =>
      results.http!.runs.find(
        (r) => r.server === server && r.query === ratio.query && r.processes === ratio.processes,
      );
    ratio.graphqlOverBareMeanLatency ??=
      (find('graphql')?.latencyMeanMs ?? NaN) / (find('bare')?.latencyMeanMs ?? NaN);
  }
  await writeFile(`${outputDir}/REPORT.md`, writeReport(results));
  progress(`rewrote ${outputDir}REPORT.md from results.json`);
}

if (args.includes('--report-only')) {
  await reportOnly();
  process.exit(0);
}

try {
  await main();
} catch (error) {
  progress(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
} finally {
  await stopAllChildren();
  const dropped = await dropBenchDatabases().catch(() => []);
  progress(`dropped ${dropped.length} benchmark database(s)`);
}
