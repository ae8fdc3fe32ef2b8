/**
 * The scale-out shape (issue 17): API processes (`src/server/main.ts` with CAS_WORKERS=0) and worker
 * processes (`npm run worker`'s entry) sharing one PostgreSQL database, 1 + 1 beside 3 + 3 in the
 * same run, each on a fresh database. Clients send `executeTask` of `ping` over HTTP, spread
 * round-robin over the API processes, as fast as they are answered; the run ends when every task
 * has succeeded. Measured: enqueue requests/s (first send to last answer) and tasks/s end to end
 * (first send to the last task's finish, from the database's own timestamps).
 */
import { busyShare, cpuTimes } from './lib/machine.js';
import { openPostgres } from '../src/db/postgres.js';
import { freePort } from '../test/support/net.js';
import { BENCH_QUOTAS_OFF, startChild, type Child } from './lib/child.js';
import { progress, sleep } from './lib/progress.js';
import { ratio } from './lib/stats.js';

export interface ScaleOutSettings {
  tasks: number;
  /** Clients sending at once, over all API processes. */
  clients: number;
  /** Worker concurrency per worker process. */
  concurrency: number;
  timeoutSeconds: number;
}

export interface ScaleOutShape {
  apiProcesses: number;
  workerProcesses: number;
}

export interface ScaleOutRun extends ScaleOutShape {
  enqueuePerSecond: number;
  tasksPerSecond: number;
  /** Tasks that succeeded (all of them unless the run timed out). */
  succeeded: number;
  /** Share of the machine's CPU busy from the first send until every task succeeded. */
  machineCpuBusy?: number;
}

export interface ScaleOutResults {
  settings: ScaleOutSettings;
  runs: ScaleOutRun[];
  /** 3 + 3 tasks/s over 1 + 1 tasks/s. */
  threeOverOne?: number;
}

export const SCALE_OUT_SHAPES: readonly ScaleOutShape[] = [
  { apiProcesses: 1, workerProcesses: 1 },
  { apiProcesses: 3, workerProcesses: 3 },
];

/** How often the run looks at the database for the tasks left. */
const POLL_MS = 100;

const ENQUEUE = JSON.stringify({
  query: 'mutation { executeTask(input: { agentId: "marketer", action: "ping" }) { id } }',
});

async function enqueue(url: string): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: ENQUEUE,
  });
  const body = (await response.json()) as { data?: { executeTask?: { id: string } }; errors?: unknown };
  if (!body.data?.executeTask?.id) throw new Error(`executeTask answered ${JSON.stringify(body)}`);
}

async function startShape(shape: ScaleOutShape, databaseUrl: string, settings: ScaleOutSettings) {
  const children: Child[] = [];
  const urls: string[] = [];
  try {
    for (let index = 0; index < shape.apiProcesses; index += 1) {
      const port = await freePort();
      children.push(
        await startChild(
          'src/server/main.ts',
          {
            ...BENCH_QUOTAS_OFF,
            DATABASE_URL: databaseUrl,
            CAS_WORKERS: '0',
            PORT: String(port),
            HOST: '127.0.0.1',
            LOG_LEVEL: 'info',
          },
          'CAS Runtime API ready',
        ),
      );
      urls.push(`http://127.0.0.1:${port}/graphql`);
    }
    for (let index = 0; index < shape.workerProcesses; index += 1) {
      children.push(
        await startChild(
          'src/server/worker-main.ts',
          {
            DATABASE_URL: databaseUrl,
            CAS_WORKER_CONCURRENCY: String(settings.concurrency),
            LOG_LEVEL: 'info',
          },
          'worker started',
        ),
      );
    }
  } catch (error) {
    await Promise.all(children.map((child) => child.stop()));
    throw error;
  }
  return { children, urls };
}

async function measureShape(
  shape: ScaleOutShape,
  databaseUrl: string,
  settings: ScaleOutSettings,
): Promise<ScaleOutRun> {
  const { children, urls } = await startShape(shape, databaseUrl, settings);
  const db = openPostgres({ connectionString: databaseUrl, applicationName: 'cas-bench', maxConnections: 2 });
  try {
    let sent = 0;
    const started = Date.now();
    const cpuAtStart = cpuTimes();
    await Promise.all(
      Array.from({ length: settings.clients }, async (_, client) => {
        while (sent < settings.tasks) {
          sent += 1;
          await enqueue(urls[(client + sent) % urls.length]!);
        }
      }),
    );
    const enqueueSeconds = (Date.now() - started) / 1000;
    const deadline = started + settings.timeoutSeconds * 1000;
    let succeeded = 0;
    while (Date.now() < deadline) {
      const [row] = await db.query<{ n: number }>(
        `select count(*)::int as n from cas_tasks where status = 'succeeded'`,
      );
      succeeded = row!.n;
      if (succeeded >= settings.tasks) break;
      await sleep(POLL_MS);
    }
    const machineCpuBusy = busyShare(cpuAtStart, cpuTimes());
    const [last] = await db.query<{ finished: Date | null }>(
      'select max(finished_at) as finished from cas_tasks',
    );
    const seconds = ((last!.finished ? new Date(last!.finished).getTime() : Date.now()) - started) / 1000;
    return {
      ...shape,
      enqueuePerSecond: settings.tasks / enqueueSeconds,
      tasksPerSecond: succeeded / seconds,
      succeeded,
      machineCpuBusy,
    };
  } finally {
    await db.close();
    await Promise.all(children.map((child) => child.stop()));
  }
}

export async function runScaleOut(
  databaseFor: (shape: ScaleOutShape) => Promise<string>,
  settings: ScaleOutSettings,
): Promise<ScaleOutResults> {
  const results: ScaleOutResults = { settings, runs: [] };
  for (const shape of SCALE_OUT_SHAPES) {
    progress(
      `scale-out: ${shape.apiProcesses} API + ${shape.workerProcesses} worker process(es), ${settings.tasks} tasks over HTTP`,
    );
    const run = await measureShape(shape, await databaseFor(shape), settings);
    results.runs.push(run);
    progress(
      `scale-out: ${run.enqueuePerSecond.toFixed(0)} enqueues/s, ${run.tasksPerSecond.toFixed(0)} tasks/s end to end (${run.succeeded} succeeded)`,
    );
  }
  const rate = (apis: number) => results.runs.find((run) => run.apiProcesses === apis)?.tasksPerSecond;
  results.threeOverOne = ratio(rate(3), rate(1));
  return results;
}
