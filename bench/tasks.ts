/**
 * Task engine, side by side in one run:
 * - CAS on the PostgreSQL server: worker processes from `npm run worker`'s entry
 *   (src/server/worker-main.ts), tasks enqueued by a runtime in this process (an API process);
 * - graphile-worker on the same server, in a database of its own, worker processes of its own;
 * - CAS embedded: PGlite and the in-process worker, in a child process;
 * - one CAS worker's database calls alone, in the 1-process rounds (bench/lib/cas-chain.ts).
 * Each scenario gets a fresh database. Both queues use concurrency 10 per process and their
 * default poll intervals (CAS 1 s, graphile-worker 2 s); both are woken by LISTEN/NOTIFY.
 */
import { loadConfig } from '../src/config.js';
import { openPostgres } from '../src/db/postgres.js';
import { silentLogger } from '../src/logger.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { measureDatabaseChain, type DatabaseChainResult } from './lib/cas-chain.js';
import { casQueueDriver, checkCasRun, type CasCheck } from './lib/cas-queue.js';
import { resultOf, startChild, type Child } from './lib/child.js';
import { graphileQueueDriver, prepareGraphileDatabase } from './lib/graphile-queue.js';
import { createBenchDatabase, databaseUrl, deadlocksIn, dropBenchDatabase } from './lib/postgres.js';
import { progress, sleep } from './lib/progress.js';
import {
  LATENCY_WARMUP_JOBS,
  measureStartLatency,
  measureThroughput,
  type LatencyResult,
  type ThroughputResult,
} from './lib/queue-measure.js';
import { ratio, summarize } from './lib/stats.js';

export interface TaskSettings {
  /** Tasks per system for the start latency, split over `latencyRounds` alternating rounds. */
  latencyTasks: number;
  latencyRounds: number;
  paceMs: number;
  throughputTasks: number;
  /**
   * Tasks per worker process in the backlog each throughput run's workers drain before the measured
   * one (not counted), so that every process of either system is as warm as a long-running one
   * (see measureThroughput): 3 processes get 3 times the backlog, each drains about as many.
   */
  throughputWarmupTasks: number;
  workerCounts: number[];
  concurrency: number;
  /** A throughput run stops after this long; its rate then counts the tasks that were done. */
  throughputTimeoutSeconds: number;
  /**
   * Throughput runs of each system per worker count, in alternating order (CAS first, then
   * graphile-worker first, ...), so that neither gets the quieter moments of a shared machine.
   */
  throughputRounds: number;
}

export interface LatencyRun extends LatencyResult {
  system: 'cas' | 'graphile-worker';
  database: 'postgres' | 'pglite';
  workerProcesses: number;
  /** Rounds whose samples this run pools (each on a fresh database); absent for the embedded run. */
  rounds?: number;
  /** The last round's (every round is checked). */
  check?: CasCheck;
  /** Deadlocks PostgreSQL detected in the scenario's database (pg_stat_database). */
  deadlocks?: number;
}

export interface ThroughputRun extends ThroughputResult {
  system: 'cas' | 'graphile-worker';
  /** Which of the alternating rounds (1, 2, ...); absent for the embedded run. */
  round?: number;
  database: 'postgres' | 'pglite';
  /** Worker processes (for PGlite: the one process that holds the database, with one worker). */
  workerProcesses: number;
  check?: CasCheck;
  deadlocks?: number;
}

/** One round of one worker's database chain alone (bench/lib/cas-chain.ts). */
export interface DatabaseChainRun extends DatabaseChainResult {
  round: number;
  check: CasCheck;
}

export interface TaskResults {
  settings: TaskSettings;
  latency: LatencyRun[];
  throughput: ThroughputRun[];
  /** Alternating with the 1-worker throughput rounds. */
  databaseChain: DatabaseChainRun[];
  ratios: {
    /** CAS p50/p99 start latency divided by graphile-worker's (lower is better for CAS). */
    latencyP50CasOverGraphile: number;
    latencyP99CasOverGraphile: number;
    /**
     * CAS tasks/s divided by graphile-worker jobs/s, per worker-process count; each rate is over all
     * its rounds (tasks done / seconds taken).
     */
    throughputCasOverGraphile: {
      workerProcesses: number;
      ratio: number;
      cas: number;
      graphile: number;
      /** Share of the machine's CPU busy during each system's drains, over all its rounds. */
      casCpuBusy?: number;
      graphileCpuBusy?: number;
    }[];
    /**
     * One worker's database chain alone (tasks over all its rounds / their seconds) divided by
     * graphile-worker's 1-process jobs/s, and CAS's 1 worker process divided by that chain.
     */
    databaseChainOverGraphile: number;
    oneWorkerOverDatabaseChain: number;
    /** Embedded (PGlite, in-process worker) divided by the server with 1 worker process. */
    embeddedOverServerThroughput: number;
    embeddedOverServerLatencyP50: number;
  };
}

export async function startCasWorkers(url: string, count: number, concurrency: number): Promise<Child[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      startChild(
        'src/server/worker-main.ts',
        { DATABASE_URL: url, CAS_WORKER_CONCURRENCY: String(concurrency), LOG_LEVEL: 'info' },
        'worker started',
      ),
    ),
  );
}

async function startGraphileWorkers(url: string, count: number, concurrency: number): Promise<Child[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      startChild(
        'bench/servers/graphile-worker.ts',
        { DATABASE_URL: url, BENCH_CONCURRENCY: String(concurrency) },
        'graphile worker started',
      ),
    ),
  );
}

async function stopAll(children: Child[]) {
  await Promise.all(children.map((child) => child.stop()));
}

/** Throws unless the run kept the queue's promises (and, unless it timed out, ran every task). */
function assertCasCheck(label: string, check: CasCheck, tasks: number, timedOut = false) {
  const problems: string[] = [];
  if (check.tasks !== tasks || (!timedOut && check.succeeded !== tasks)) {
    problems.push(`${check.succeeded}/${check.tasks} succeeded`);
  }
  if (check.tasksWithSeveralFinalEvents !== 0) {
    problems.push(`${check.tasksWithSeveralFinalEvents} task(s) with more than one final event`);
  }
  if (check.finishedTasksWithoutFinalEvent !== 0) {
    problems.push(`${check.finishedTasksWithoutFinalEvent} finished task(s) without a final event`);
  }
  if (!check.eventLogContiguous) problems.push('event seq has gaps');
  if (problems.length > 0) throw new Error(`${label}: ${problems.join('; ')}`);
}

/** One latency round, with its samples for pooling. */
type LatencyRound = LatencyRun & { samples: number[] };

async function casLatency(template: string, settings: TaskSettings, tasks: number): Promise<LatencyRound> {
  const name = await createBenchDatabase('cas_latency', template);
  const url = databaseUrl(name);
  const workers = await startCasWorkers(url, 1, settings.concurrency);
  // The enqueuing side: an API process's runtime (no worker of its own).
  const runtime = await createRuntime({
    config: loadConfig({ DATABASE_URL: url, CAS_WORKERS: '0', LOG_LEVEL: 'silent' }),
    logger: silentLogger(),
  });
  const db = openPostgres({ connectionString: url, maxConnections: 2, applicationName: 'cas-bench' });
  try {
    await sleep(500);
    const driver = casQueueDriver('CAS latency (PostgreSQL)', db, async (agentId) => {
      await runtime.executeTask({ agentId, action: 'ping' });
    });
    const result = await measureStartLatency(driver, tasks, settings.paceMs);
    const check = await checkCasRun(db);
    assertCasCheck('CAS latency run', check, tasks + LATENCY_WARMUP_JOBS);
    await stopAll(workers);
    const deadlocks = await deadlocksIn(name);
    return { system: 'cas', database: 'postgres', workerProcesses: 1, ...result, check, deadlocks };
  } finally {
    await stopAll(workers);
    await runtime.shutdown({ deadlineMs: 0 });
    await db.close();
    await dropBenchDatabase(name);
  }
}

async function casThroughput(
  template: string,
  settings: TaskSettings,
  count: number,
): Promise<ThroughputRun> {
  const name = await createBenchDatabase(`cas_throughput_${count}`, template);
  const url = databaseUrl(name);
  const workers = await startCasWorkers(url, count, settings.concurrency);
  const db = openPostgres({ connectionString: url, maxConnections: 2, applicationName: 'cas-bench' });
  try {
    await sleep(500);
    const driver = casQueueDriver(`CAS throughput, ${count} worker(s)`, db, async () => undefined);
    const result = await measureThroughput(
      driver,
      settings.throughputTasks,
      settings.throughputTimeoutSeconds * 1000,
      settings.throughputWarmupTasks * count,
    );
    await stopAll(workers);
    const check = await checkCasRun(db, settings.throughputTasks);
    assertCasCheck(
      `CAS throughput run (${count} workers)`,
      check,
      settings.throughputWarmupTasks * count + settings.throughputTasks,
      result.timedOut,
    );
    const deadlocks = await deadlocksIn(name);
    return { system: 'cas', database: 'postgres', workerProcesses: count, ...result, check, deadlocks };
  } finally {
    await stopAll(workers);
    await db.close();
    await dropBenchDatabase(name);
  }
}

/** One worker's database side alone, on a fresh database: see bench/lib/cas-chain.ts. */
async function casDatabaseChain(
  template: string,
  settings: TaskSettings,
): Promise<Omit<DatabaseChainRun, 'round'>> {
  const name = await createBenchDatabase('cas_database_chain', template);
  const url = databaseUrl(name);
  const db = openPostgres({ connectionString: url, maxConnections: 2, applicationName: 'cas-bench' });
  try {
    const driver = casQueueDriver('CAS database chain', db, async () => undefined);
    const result = await measureDatabaseChain(url, (count) => driver.enqueueMany(count), {
      tasks: settings.throughputTasks,
      warmupTasks: settings.throughputWarmupTasks,
      batchSize: settings.concurrency,
    });
    const check = await checkCasRun(db, settings.throughputTasks);
    assertCasCheck('CAS database chain', check, settings.throughputWarmupTasks + settings.throughputTasks);
    return { ...result, check };
  } finally {
    await db.close();
    await dropBenchDatabase(name);
  }
}

async function graphileLatency(settings: TaskSettings, tasks: number): Promise<LatencyRound> {
  const name = await createBenchDatabase('graphile_latency');
  const url = databaseUrl(name);
  await prepareGraphileDatabase(url, true);
  const workers = await startGraphileWorkers(url, 1, settings.concurrency);
  const driver = await graphileQueueDriver('graphile-worker latency', url);
  try {
    await sleep(500);
    const result = await measureStartLatency(driver, tasks, settings.paceMs);
    await stopAll(workers);
    const deadlocks = await deadlocksIn(name);
    return { system: 'graphile-worker', database: 'postgres', workerProcesses: 1, ...result, deadlocks };
  } finally {
    await stopAll(workers);
    await driver.close();
    await dropBenchDatabase(name);
  }
}

async function graphileThroughput(settings: TaskSettings, count: number): Promise<ThroughputRun> {
  const name = await createBenchDatabase(`graphile_throughput_${count}`);
  const url = databaseUrl(name);
  await prepareGraphileDatabase(url, false);
  const workers = await startGraphileWorkers(url, count, settings.concurrency);
  const driver = await graphileQueueDriver(`graphile-worker throughput, ${count} worker(s)`, url);
  try {
    await sleep(500);
    const result = await measureThroughput(
      driver,
      settings.throughputTasks,
      settings.throughputTimeoutSeconds * 1000,
      settings.throughputWarmupTasks * count,
    );
    await stopAll(workers);
    const deadlocks = await deadlocksIn(name);
    return { system: 'graphile-worker', database: 'postgres', workerProcesses: count, ...result, deadlocks };
  } finally {
    await stopAll(workers);
    await driver.close();
    await dropBenchDatabase(name);
  }
}

interface EmbeddedResult {
  latency: LatencyResult;
  latencyCheck: CasCheck;
  throughput: ThroughputResult;
  throughputCheck: CasCheck;
}

async function embedded(settings: TaskSettings): Promise<{ latency: LatencyRun; throughput: ThroughputRun }> {
  const child = await startChild(
    'bench/servers/embedded-tasks.ts',
    {
      BENCH_LATENCY_TASKS: String(settings.latencyTasks),
      BENCH_PACE_MS: String(settings.paceMs),
      BENCH_THROUGHPUT_TASKS: String(settings.throughputTasks),
      BENCH_THROUGHPUT_WARMUP_TASKS: String(settings.throughputWarmupTasks),
      BENCH_CONCURRENCY: String(settings.concurrency),
      BENCH_THROUGHPUT_TIMEOUT_MS: String(settings.throughputTimeoutSeconds * 1000),
    },
    'embedded runtime ready',
  );
  const result = await resultOf<EmbeddedResult>(child);
  assertCasCheck('embedded latency run', result.latencyCheck, settings.latencyTasks + LATENCY_WARMUP_JOBS);
  assertCasCheck(
    'embedded throughput run',
    result.throughputCheck,
    settings.throughputWarmupTasks + settings.throughputTasks,
    result.throughput.timedOut,
  );
  return {
    latency: {
      system: 'cas',
      database: 'pglite',
      workerProcesses: 1,
      ...result.latency,
      check: result.latencyCheck,
    },
    throughput: {
      system: 'cas',
      database: 'pglite',
      workerProcesses: 1,
      ...result.throughput,
      check: result.throughputCheck,
    },
  };
}

/** One system's latency rounds as one run: the samples of every round together. */
function pooledLatency(rounds: LatencyRound[]): LatencyRun {
  const { samples: _samples, ...last } = rounds.at(-1)!;
  const samples = rounds.flatMap((run) => run.samples);
  return {
    ...last,
    rounds: rounds.length,
    tasks: samples.length,
    latency: summarize(samples),
    scheduleSlipMs: Math.max(...rounds.map((run) => run.scheduleSlipMs)),
    deadlocks: rounds.reduce((sum, run) => sum + (run.deadlocks ?? 0), 0),
  };
}

const describeLatency = (run: LatencyRun) =>
  `p50 ${run.latency.p50.toFixed(2)} ms, p99 ${run.latency.p99.toFixed(2)} ms (${run.tasks} tasks)`;
const describeThroughput = (run: ThroughputRun) =>
  `${Math.round(run.tasksPerSecond)} tasks/s (${run.completed} of ${run.tasks} in ${run.seconds.toFixed(2)} s` +
  `${run.timedOut ? ', TIMED OUT' : ''}${run.deadlocks ? `, ${run.deadlocks} deadlocks` : ''})`;

export async function runTasks(template: string, settings: TaskSettings): Promise<TaskResults> {
  const latency: LatencyRun[] = [];
  const throughput: ThroughputRun[] = [];
  const databaseChain: DatabaseChainRun[] = [];
  const perRound = Math.ceil(settings.latencyTasks / settings.latencyRounds);
  const latencyRounds = { cas: [] as LatencyRound[], 'graphile-worker': [] as LatencyRound[] };
  for (let round = 1; round <= settings.latencyRounds; round++) {
    const systems = ['cas', 'graphile-worker'] as const;
    for (const system of round % 2 === 1 ? systems : [...systems].reverse()) {
      const label = `tasks: ${system} start latency on PostgreSQL, 1 worker process, round ${round}`;
      progress(`${label}, ${perRound} tasks, one every ${settings.paceMs} ms`);
      const run =
        system === 'cas'
          ? await casLatency(template, settings, perRound)
          : await graphileLatency(settings, perRound);
      latencyRounds[system].push(run);
      progress(`${label}: ${describeLatency(run)}`);
    }
  }
  latency.push(pooledLatency(latencyRounds.cas), pooledLatency(latencyRounds['graphile-worker']));

  for (const count of settings.workerCounts) {
    for (let round = 1; round <= settings.throughputRounds; round++) {
      // With one worker process, its database chain alone takes turns with both (a third system).
      const systems =
        count === 1
          ? (['cas', 'graphile-worker', 'cas-database-chain'] as const)
          : (['cas', 'graphile-worker'] as const);
      for (const system of round % 2 === 1 ? systems : [...systems].reverse()) {
        if (system === 'cas-database-chain') {
          const label = `tasks: CAS database chain alone (batches of ${settings.concurrency}), round ${round}`;
          progress(`${label}, backlog of ${settings.throughputTasks}`);
          const run = { ...(await casDatabaseChain(template, settings)), round };
          databaseChain.push(run);
          progress(`${label}: ${Math.round(run.tasksPerSecond)} tasks/s in ${run.seconds.toFixed(2)} s`);
          continue;
        }
        const label = `tasks: ${system} throughput, ${count} worker process(es), round ${round}`;
        progress(`${label}, backlog of ${settings.throughputTasks}`);
        const run =
          system === 'cas'
            ? await casThroughput(template, settings, count)
            : await graphileThroughput(settings, count);
        throughput.push({ ...run, round });
        progress(`${label}: ${describeThroughput(run)}`);
      }
    }
  }

  progress('tasks: embedded (PGlite, in-process worker): start latency and throughput');
  const embeddedRuns = await embedded(settings);
  latency.push(embeddedRuns.latency);
  throughput.push(embeddedRuns.throughput);
  progress(
    `tasks: embedded: ${describeLatency(embeddedRuns.latency)}; ${describeThroughput(embeddedRuns.throughput)}`,
  );

  const findLatency = (system: string, database: string) =>
    latency.find((run) => run.system === system && run.database === database);
  /** Tasks done per second over every round of one system, database and worker count. */
  const findThroughput = (system: string, database: string, workers: number) => {
    const runs = throughput.filter(
      (run) => run.system === system && run.database === database && run.workerProcesses === workers,
    );
    const seconds = runs.reduce((sum, run) => sum + run.seconds, 0);
    const measured = runs.filter((run) => run.machineCpuBusy !== undefined);
    const busySeconds = measured.reduce((sum, run) => sum + run.machineCpuBusy! * run.seconds, 0);
    const measuredSeconds = measured.reduce((sum, run) => sum + run.seconds, 0);
    return runs.length === 0
      ? undefined
      : {
          tasksPerSecond: runs.reduce((sum, run) => sum + run.completed, 0) / seconds,
          cpuBusy: measured.length === runs.length ? busySeconds / measuredSeconds : undefined,
        };
  };
  const chainSeconds = databaseChain.reduce((sum, run) => sum + run.seconds, 0);
  const chainTasksPerSecond =
    databaseChain.length === 0
      ? undefined
      : databaseChain.reduce((sum, run) => sum + run.tasks, 0) / chainSeconds;
  return {
    settings,
    latency,
    throughput,
    databaseChain,
    ratios: {
      latencyP50CasOverGraphile: ratio(
        findLatency('cas', 'postgres')?.latency.p50,
        findLatency('graphile-worker', 'postgres')?.latency.p50,
      ),
      latencyP99CasOverGraphile: ratio(
        findLatency('cas', 'postgres')?.latency.p99,
        findLatency('graphile-worker', 'postgres')?.latency.p99,
      ),
      throughputCasOverGraphile: settings.workerCounts.map((workers) => {
        const cas = findThroughput('cas', 'postgres', workers);
        const graphile = findThroughput('graphile-worker', 'postgres', workers);
        return {
          workerProcesses: workers,
          ratio: ratio(cas?.tasksPerSecond, graphile?.tasksPerSecond),
          cas: cas?.tasksPerSecond ?? NaN,
          graphile: graphile?.tasksPerSecond ?? NaN,
          casCpuBusy: cas?.cpuBusy,
          graphileCpuBusy: graphile?.cpuBusy,
        };
      }),
      databaseChainOverGraphile: ratio(
        chainTasksPerSecond,
        findThroughput('graphile-worker', 'postgres', 1)?.tasksPerSecond,
      ),
      oneWorkerOverDatabaseChain: ratio(
        findThroughput('cas', 'postgres', 1)?.tasksPerSecond,
        chainTasksPerSecond,
      ),
      embeddedOverServerThroughput: ratio(
        findThroughput('cas', 'pglite', 1)?.tasksPerSecond,
        findThroughput('cas', 'postgres', 1)?.tasksPerSecond,
      ),
      embeddedOverServerLatencyP50: ratio(
        findLatency('cas', 'pglite')?.latency.p50,
        findLatency('cas', 'postgres')?.latency.p50,
      ),
    },
  };
}
