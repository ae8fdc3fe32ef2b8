/**
 * One worker's database side alone: the calls a CAS worker process makes to drain a backlog (a
 * claim, then one `cas_complete_and_claim_tasks` per batch, each batch completing the tasks the
 * previous one claimed and claiming as many), sent back to back from one connection, with no task
 * code, pool, tracing or metrics between them. A worker process with one batch in flight is a serial
 * chain of this and its JavaScript; this is the chain with the JavaScript taken out, so its rate is
 * the most one worker process could reach on this machine with the same writes per task.
 */
import pg from 'pg';
import { busyShare, cpuMs, cpuTimes } from './machine.js';

export interface DatabaseChainResult {
  tasks: number;
  /** Tasks per batch: the worker's concurrency. */
  batchSize: number;
  batches: number;
  seconds: number;
  tasksPerSecond: number;
  /** Share of the machine's CPU busy during the measured drain (every core and process). */
  machineCpuBusy?: number;
  /** CPU time of the chain's PostgreSQL backend per batch (Linux; the server on this machine). */
  backendCpuMsPerBatch?: number;
}

const WORKER_ID = 'bench-database-chain';
const LEASE_MS = 30_000;

interface ClaimedRow {
  id: string;
  lease_token: string;
  status: string;
}

/** The CPU time of a local process in ms; undefined where /proc is not there. */
const processCpuMs = (pid: number): Promise<number | undefined> => cpuMs(pid).catch(() => undefined);

/** Completes `claimed` and claims up to `batchSize`, batch after batch, until nothing is left. */
async function drain(client: pg.Client, batchSize: number): Promise<{ tasks: number; batches: number }> {
  let claimed = (
    await client.query<ClaimedRow>(`select id, lease_token, status from cas_claim_tasks($1, $2, $3)`, [
      WORKER_ID,
      batchSize,
      LEASE_MS,
    ])
  ).rows;
  let tasks = 0;
  let batches = 0;
  while (claimed.length > 0) {
    const items = claimed.map((task) => ({ id: task.id, leaseToken: task.lease_token, result: null }));
    const { rows } = await client.query<ClaimedRow>(
      `select id, lease_token, status from cas_complete_and_claim_tasks(
         p_items => $1::text::jsonb, p_worker_id => $2, p_limit => $3, p_lease_ms => $4)`,
      [JSON.stringify(items), WORKER_ID, batchSize, LEASE_MS],
    );
    tasks += claimed.length;
    batches += 1;
    claimed = rows.filter((row) => row.status === 'running');
  }
  return { tasks, batches };
}

/**
 * Drains a warm-up backlog (not counted: the connection's first plans), then the measured one, with
 * `enqueue` filling the queue in one transaction each time.
 */
export async function measureDatabaseChain(
  url: string,
  enqueue: (count: number) => Promise<void>,
  settings: { tasks: number; warmupTasks: number; batchSize: number },
): Promise<DatabaseChainResult> {
  const client = new pg.Client({ connectionString: url, application_name: 'cas-bench-database-chain' });
  await client.connect();
  try {
    const backendPid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    if (settings.warmupTasks > 0) {
      await enqueue(settings.warmupTasks);
      await drain(client, settings.batchSize);
    }
    await enqueue(settings.tasks);
    const cpuAtStart = cpuTimes();
    const backendCpuAtStart = await processCpuMs(backendPid);
    const started = performance.now();
    const { tasks, batches } = await drain(client, settings.batchSize);
    const seconds = (performance.now() - started) / 1000;
    const backendCpu = await processCpuMs(backendPid);
    return {
      tasks,
      batchSize: settings.batchSize,
      batches,
      seconds,
      tasksPerSecond: tasks / seconds,
      machineCpuBusy: busyShare(cpuAtStart, cpuTimes()),
      backendCpuMsPerBatch:
        backendCpu === undefined || backendCpuAtStart === undefined
          ? undefined
          : (backendCpu - backendCpuAtStart) / batches,
    };
  } finally {
    await client.end();
  }
}
