/**
 * What the reliability suites share: their own databases on the PostgreSQL server
 * (`cas_rel_<pid>_<label>`, dropped afterwards, leftovers of dead runs dropped at start), the real
 * server and worker processes, their memory, and the checks every fault scenario ends with.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';
import { openPostgres } from '../../src/db/postgres.js';
import type { Queryable } from '../../src/db/database.js';
import {
  databaseUrl as databaseUrlAt,
  processIsAlive,
  withAdmin as withAdminAt,
} from '../support/postgres-admin.js';
import { freePort } from '../support/net.js';
import { startProcess, stopProcess, type ServiceProcess } from '../support/processes.js';

const run = promisify(execFile);

export const ADMIN_URL =
  process.env.CAS_TEST_DATABASE_URL?.trim() || 'postgres://postgres@127.0.0.1:5432/test';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const databaseUrl = (name: string) => databaseUrlAt(ADMIN_URL, name);

export const withAdmin = <T>(work: (client: pg.Client) => Promise<T>) =>
  withAdminAt(ADMIN_URL, work, 'cas-reliability-admin');

export interface ReliabilityDatabase {
  name: string;
  url: string;
  /** A small pool for the test's own queries. */
  db: ReturnType<typeof openPostgres>;
  close(): Promise<void>;
}

/** A migrated, seeded database of its own; leftovers of runs whose process is gone are dropped. */
export async function createReliabilityDatabase(label: string): Promise<ReliabilityDatabase> {
  const name = `cas_rel_${process.pid}_${label}`;
  await withAdmin(async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      `select datname from pg_database where datname like 'cas\\_rel\\_%'`,
    );
    for (const { datname } of rows) {
      const pid = Number(/^cas_rel_(\d+)_/.exec(datname)?.[1]);
      if (datname === name || (pid && pid !== process.pid && !processIsAlive(pid))) {
        await client.query(`drop database if exists ${pg.escapeIdentifier(datname)} with (force)`);
      }
    }
    await client.query(`create database ${pg.escapeIdentifier(name)}`);
  });
  const url = databaseUrl(name);
  const db = openPostgres({ connectionString: url, maxConnections: 4, applicationName: 'cas-reliability' });
  await migrate(db);
  let closing: Promise<void> | undefined;
  return {
    name,
    url,
    db,
    close: () =>
      (closing ??= (async () => {
        await db.close().catch(() => undefined);
        await withAdmin((client) =>
          client.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`),
        ).catch(() => undefined);
      })()),
  };
}

export interface ServerProcess extends ServiceProcess {
  origin: string;
  url: string;
  pid: number;
  stop(): Promise<unknown>;
}

/**
 * Per-caller quotas off: load and fault suites send thousands of operations from one address on
 * purpose (the quotas have their own tests in test/server/quotas.test.ts).
 */
export const QUOTAS_OFF = {
  CAS_MUTATION_RATE_LIMIT: '0',
  CAS_MAX_SOCKETS_PER_CALLER: '0',
  CAS_MAX_SSE_STREAMS_PER_CALLER: '0',
  CAS_MAX_SUBSCRIPTIONS_PER_SOCKET: '0',
};

/** `npm start`'s entry (src/server/main.ts) on a free loopback port. */
export async function startServer(env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort();
  const service = await startProcess(
    'src/server/main.ts',
    { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...QUOTAS_OFF, ...env },
    'CAS Runtime API ready',
    60_000,
  );
  const origin = `http://127.0.0.1:${port}`;
  return {
    ...service,
    origin,
    url: `${origin}/graphql`,
    pid: service.child.pid!,
    stop: () => stopProcess(service),
  };
}

/** `npm run worker`'s entry (src/server/worker-main.ts). */
export function startWorker(env: Record<string, string>): Promise<ServiceProcess> {
  return startProcess('src/server/worker-main.ts', { LOG_LEVEL: 'info', ...env }, 'worker started', 60_000);
}

/** Resident memory of a process, in MiB (from /proc/<pid>/status). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  return kb / 1024;
}

/** POSTs one GraphQL operation; resolves with the status and parsed body (errors included). */
export async function graphql<Data = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<{ status: number; data?: Data; errors?: { message: string; extensions?: { code?: string } }[] }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json()) as { data?: Data; errors?: { message: string }[] };
  return { status: response.status, ...body };
}

export interface TaskLogCheck {
  tasks: number;
  byStatus: Record<string, number>;
  /** Tasks with more than one final event (task_completed / task_failed / task_cancelled). */
  severalFinalEvents: string[];
  /** Tasks with no final event. */
  noFinalEvent: string[];
  /** Tasks whose status is final but whose final event says otherwise (or the reverse). */
  statusMismatch: string[];
  events: number;
  maxSeq: number;
  /** Event seq is exactly 1..N. */
  contiguous: boolean;
}

/** Every task's final events and the event log's sequence, as the fault scenarios assert them. */
export async function checkTaskLog(db: Queryable): Promise<TaskLogCheck> {
  const rows = await db.query<{ id: string; status: string; finals: string[] }>(`
    select t.id, t.status,
           coalesce(array_agg(e.event_type order by e.seq)
                    filter (where e.event_type in ('task_completed', 'task_failed', 'task_cancelled')),
                    '{}') as finals
    from cas_tasks t
    left join cas_agent_events e on e.task_id = t.id
    group by t.id, t.status`);
  const finalOf: Record<string, string> = {
    task_completed: 'succeeded',
    task_failed: 'failed',
    task_cancelled: 'cancelled',
  };
  const byStatus: Record<string, number> = {};
  const check: TaskLogCheck = {
    tasks: rows.length,
    byStatus,
    severalFinalEvents: [],
    noFinalEvent: [],
    statusMismatch: [],
    events: 0,
    maxSeq: 0,
    contiguous: false,
  };
  for (const row of rows) {
    byStatus[row.status] = (byStatus[row.status] ?? 0) + 1;
    if (row.finals.length > 1) check.severalFinalEvents.push(row.id);
    if (row.finals.length === 0) check.noFinalEvent.push(row.id);
    if (row.finals.length === 1 && finalOf[row.finals[0]!] !== row.status) check.statusMismatch.push(row.id);
  }
  const [seq] = await db.query<{ n: number; max: number | null; min: number | null }>(
    'select count(*)::int as n, max(seq)::int as max, min(seq)::int as min from cas_agent_events',
  );
  check.events = seq!.n;
  check.maxSeq = seq!.max ?? 0;
  check.contiguous = seq!.n === 0 || (seq!.min === 1 && seq!.max === seq!.n);
  return check;
}

/** Polls until no task is queued or running; resolves with the number still open. */
export async function waitForAllFinal(db: Queryable, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let open = -1;
    try {
      const [row] = await db.query<{ n: number }>(
        `select count(*)::int as n from cas_tasks where status in ('queued', 'running')`,
      );
      open = row!.n;
    } catch {
      // The server is restarting; ask again.
    }
    if (open === 0 || Date.now() > deadline) return open;
    await sleep(200);
  }
}

/** The local cluster's major version, as .ci/run finds it (`ls /etc/postgresql`). */
export function localClusterVersion(): string | null {
  try {
    const versions = readdirSync('/etc/postgresql').filter((name) => /^\d+$/.test(name));
    return versions.sort((a, b) => Number(a) - Number(b)).at(-1) ?? null;
  } catch {
    return null;
  }
}

export async function postgresIsReady(): Promise<boolean> {
  const { hostname, port } = new URL(ADMIN_URL);
  try {
    await run('pg_isready', ['-q', '-h', hostname, '-p', port || '5432'], { timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

/** pg_ctlcluster <version> main <action> (restart, start). */
export async function pgCtlCluster(action: 'restart' | 'start', version: string): Promise<void> {
  await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', action], { timeout: 60_000 });
}

/** Makes sure the server accepts connections again: waits, then starts it if it stays down. */
export async function ensurePostgresUp(version: string | null, waitMs = 15_000): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    if (await postgresIsReady()) return;
    await sleep(250);
  }
  if (version) await pgCtlCluster('start', version).catch(() => undefined);
  for (let i = 0; i < 120; i++) {
    if (await postgresIsReady()) return;
    await sleep(500);
  }
  throw new Error('the PostgreSQL server is not accepting connections');
}
