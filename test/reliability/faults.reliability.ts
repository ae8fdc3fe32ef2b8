/**
 * Faults during a task load, against worker processes (`npm run worker`'s entry) on the
 * PostgreSQL server: a worker killed with SIGKILL, the LISTEN connections terminated, the server
 * itself restarted. Afterwards every task has exactly one final status (exactly one
 * task_completed / task_failed / task_cancelled event) and the event log has no gap (seq is 1..N).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { createRuntime } from '../../src/runtime/create-runtime.js';
import type { CustomRuntime } from '../../src/runtime/custom-runtime.js';
import { stopProcess, type ServiceProcess } from '../support/processes.js';
import {
  checkTaskLog,
  createReliabilityDatabase,
  ensurePostgresUp,
  localClusterVersion,
  pgCtlCluster,
  sleep,
  startWorker,
  waitForAllFinal,
  withAdmin,
  type ReliabilityDatabase,
  type TaskLogCheck,
} from './support.js';

const AGENTS = ['marketer', 'analyst', 'planner', 'developer', 'tester', 'qa', 'engineer', 'security'];
const WORKER_ENV = {
  CAS_WORKER_CONCURRENCY: '10',
  CAS_WORKER_POLL_MS: '200',
  CAS_TASK_LEASE_MS: '1500',
  CAS_SHUTDOWN_TIMEOUT_MS: '2000',
};
/** Time for a load to reach a final status for every task after the fault. */
const SETTLE_MS = 120_000;

interface Scenario {
  database: ReliabilityDatabase;
  workers: ServiceProcess[];
  /** The enqueuing side: a runtime without workers, as an API process. */
  runtime: CustomRuntime;
}

let current: Scenario | null = null;

async function openScenario(label: string, workers: number, env: Record<string, string> = {}) {
  const database = await createReliabilityDatabase(label);
  const runtime = await createRuntime({
    config: loadConfig({ DATABASE_URL: database.url, CAS_WORKERS: '0', LOG_LEVEL: 'silent' }),
    logger: silentLogger(),
  });
  current = { database, runtime, workers: [] };
  current.workers = await Promise.all(
    Array.from({ length: workers }, () => startWorker({ ...WORKER_ENV, ...env, DATABASE_URL: database.url })),
  );
  return current;
}

async function closeScenario() {
  const scenario = current;
  current = null;
  if (!scenario) return;
  await Promise.all(scenario.workers.map((worker) => stopProcess(worker, 'SIGKILL')));
  await scenario.runtime.shutdown({ deadlineMs: 0 }).catch(() => undefined);
  await scenario.database.close();
}

/**
 * Enqueues `count` tasks (pings and short waits, up to 3 attempts each) at a steady pace over
 * `seconds`, calling `fault` once at `faultAtSeconds`. Enqueue calls that fail (the database is
 * away) are counted, not retried: only tasks that were enqueued are judged.
 */
async function load(
  runtime: CustomRuntime,
  count: number,
  seconds: number,
  fault?: { atSeconds: number; run: () => Promise<void> },
): Promise<{ enqueued: number; refused: number; faultDone: Promise<void> }> {
  const started = performance.now();
  let enqueued = 0;
  let refused = 0;
  let faultDone: Promise<void> = Promise.resolve();
  let faultStarted = false;
  for (let i = 0; i < count; i++) {
    const due = started + (i * seconds * 1000) / count;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    if (fault && !faultStarted && performance.now() - started >= fault.atSeconds * 1000) {
      faultStarted = true;
      faultDone = fault.run();
    }
    const agentId = AGENTS[i % AGENTS.length]!;
    const task =
      i % 3 === 0
        ? { agentId, action: 'ping', maxAttempts: 3 }
        : { agentId, action: 'wait', input: { ms: 20 + ((i * 37) % 280) }, maxAttempts: 3 };
    try {
      await runtime.executeTask(task);
      enqueued++;
    } catch {
      refused++;
    }
  }
  return { enqueued, refused, faultDone };
}

function report(name: string, check: TaskLogCheck, extra = '') {
  console.log(
    `[reliability] ${name}: ${check.tasks} tasks ${JSON.stringify(check.byStatus)}, ${check.events} events ` +
      `(seq 1..${check.maxSeq}${check.contiguous ? ', no gap' : ', GAPS'})${extra ? `, ${extra}` : ''}`,
  );
}

function expectOneFinalEach(check: TaskLogCheck, enqueued: number) {
  expect(check.tasks).toBe(enqueued);
  expect(check.noFinalEvent, 'tasks without a final event').toEqual([]);
  expect(check.severalFinalEvents, 'tasks with more than one final event').toEqual([]);
  expect(check.statusMismatch, 'tasks whose final event and status disagree').toEqual([]);
  expect(check.contiguous, `event seq 1..${check.maxSeq} for ${check.events} events`).toBe(true);
}

describe('faults during a task load', () => {
  const clusterVersion = localClusterVersion();

  beforeAll(async () => {
    await ensurePostgresUp(clusterVersion);
  });
  afterEach(async () => {
    await ensurePostgresUp(clusterVersion);
    await closeScenario();
  });
  afterAll(async () => {
    await ensurePostgresUp(clusterVersion);
    await closeScenario();
  });

  it('a worker killed with SIGKILL: its tasks are taken over, each ends once', async () => {
    const { runtime, workers, database } = await openScenario('sigkill', 3);
    let victimPid = 0;
    let heldByVictim = 0;
    const { enqueued, faultDone } = await load(runtime, 300, 3, {
      atSeconds: 1,
      run: async () => {
        // The worker holding the most running tasks right now (worker ids are host:pid:...).
        const rows = await database.db.query<{ worker_id: string; n: number }>(
          `select worker_id, count(*)::int as n from cas_tasks where status = 'running'
           group by worker_id order by n desc limit 1`,
        );
        const pid = Number(rows[0]?.worker_id.split(':')[1]);
        const victim = workers.find((worker) => worker.child.pid === pid) ?? workers[0]!;
        victimPid = victim.child.pid!;
        victim.child.kill('SIGKILL');
        await victim.exited;
        // Counted after the kill: tasks it finished between the query above and its death are not
        // its to lose. Its rows keep its worker id until a sweep takes them over.
        const [held] = await database.db.query<{ n: number }>(
          `select count(*)::int as n from cas_tasks where status = 'running' and worker_id like $1`,
          [`%:${victimPid}:%`],
        );
        heldByVictim = held?.n ?? 0;
      },
    });
    await faultDone;
    const open = await waitForAllFinal(database.db, SETTLE_MS);
    const check = await checkTaskLog(database.db);
    const [{ retried } = { retried: 0 }] = await database.db.query<{ retried: number }>(
      `select count(distinct task_id)::int as retried from cas_agent_events
       where event_type = 'task_retry_scheduled' and payload->>'reason' = 'lease_expired'`,
    );
    report(
      'SIGKILL',
      check,
      `worker ${victimPid} killed holding ${heldByVictim} running task(s), ${retried} task(s) taken over after its lease expired`,
    );
    expect(open).toBe(0);
    expect(heldByVictim).toBeGreaterThan(0);
    // A completion the victim sent just before dying still commits on the server, so only some of
    // the tasks it held need taking over; at least one of them did.
    expect(retried).toBeGreaterThan(0);
    expectOneFinalEach(check, enqueued);
    expect(check.byStatus).toEqual({ succeeded: enqueued });
  });

  it('LISTEN connections terminated: workers listen again and nothing is lost', async () => {
    // A 5 s poll: a task that starts within a second afterwards was woken by NOTIFY.
    const { runtime, database } = await openScenario('listen', 2, { CAS_WORKER_POLL_MS: '5000' });
    const terminate = async () => {
      const terminated = await withAdmin(async (client) => {
        const { rows } = await client.query<{ n: number }>(
          `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
           where datname = $1 and application_name like '%:listen'`,
          [database.name],
        );
        return rows[0]!.n;
      });
      return terminated;
    };
    let terminations = 0;
    const { enqueued, faultDone } = await load(runtime, 240, 3, {
      atSeconds: 0.5,
      run: async () => {
        for (let i = 0; i < 3; i++) {
          terminations += await terminate();
          await sleep(700);
        }
      },
    });
    await faultDone;
    expect(terminations).toBeGreaterThanOrEqual(3);
    expect(await waitForAllFinal(database.db, SETTLE_MS)).toBe(0);

    // Listening again: fresh tasks start at once, not at the next 5 s poll.
    await sleep(2_000);
    const probes = [];
    for (let i = 0; i < 5; i++) {
      probes.push(await runtime.executeTask({ agentId: 'qa', action: 'ping' }));
      await sleep(100);
    }
    expect(await waitForAllFinal(database.db, 10_000)).toBe(0);
    const latencies = await database.db.query<{ ms: number }>(
      `select (extract(epoch from started_at - created_at) * 1000)::float8 as ms from cas_tasks
       where id = any ($1::uuid[])`,
      [probes.map((task) => task.id)],
    );
    const listeners = await withAdmin(async (client) => {
      const { rows } = await client.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name like '%:listen'`,
        [database.name],
      );
      return rows[0]!.n;
    });

    const check = await checkTaskLog(database.db);
    report(
      'LISTEN terminated',
      check,
      `${terminations} LISTEN backends terminated, ${listeners} listening again, start latency afterwards ` +
        latencies.map((row) => `${row.ms.toFixed(1)} ms`).join(', '),
    );
    expectOneFinalEach(check, enqueued + probes.length);
    expect(check.byStatus).toEqual({ succeeded: enqueued + probes.length });
    expect(listeners).toBeGreaterThanOrEqual(2);
    for (const { ms } of latencies) expect(ms).toBeLessThan(1_000);
  });

  it('the PostgreSQL server restarted: workers reconnect, each task ends once', async (context) => {
    if (!clusterVersion) {
      context.skip('no local cluster in /etc/postgresql (pg_ctlcluster cannot restart it)');
      return;
    }
    const { runtime, database } = await openScenario('restart', 2);
    let restartMs = 0;
    const { enqueued, refused, faultDone } = await load(runtime, 300, 4, {
      atSeconds: 1.5,
      run: async () => {
        const started = performance.now();
        await pgCtlCluster('restart', clusterVersion);
        await ensurePostgresUp(clusterVersion);
        restartMs = performance.now() - started;
      },
    });
    await faultDone;
    const open = await waitForAllFinal(database.db, SETTLE_MS);
    const check = await checkTaskLog(database.db);
    const [{ attempts } = { attempts: 0 }] = await database.db.query<{ attempts: number }>(
      'select coalesce(sum(attempts), 0)::int as attempts from cas_tasks',
    );
    report(
      'PostgreSQL restart',
      check,
      `restart took ${(restartMs / 1000).toFixed(1)} s, ${refused} enqueue call(s) refused meanwhile, ` +
        `${attempts} attempts in all`,
    );
    expect(open).toBe(0);
    expectOneFinalEach(check, enqueued);
    expect(enqueued).toBeGreaterThan(0);
  });
});
