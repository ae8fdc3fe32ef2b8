/**
 * The scenario durable tasks promise to survive: a worker process is killed with SIGKILL in the
 * middle of a task; after its lease expires another worker process takes the task over, work the
 * first one finished does not run again, and the task completes. The fixture agents (durable-agents,
 * graph-agents) record each side effect as a line of `<dir>/effects` and wait for `<dir>/go`
 * before their fourth piece of work, so the kill lands there.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { loadAgents } from '../../src/agents/loader.js';
import type { AgentEvent } from '../../src/domains/event/event.js';
import type { Task } from '../../src/domains/task/task.js';
import { openTestRuntime, type TestRuntime } from './runtime.js';
import { startProcess, stopProcess, type ServiceProcess } from './processes.js';
import { ROOT } from './spawned.js';
import { until } from './until.js';

/** Worker processes that sweep a dead worker's lease within seconds. */
const WORKER_ENV = {
  CAS_WORKER_CONCURRENCY: '2',
  CAS_WORKER_POLL_MS: '200',
  CAS_TASK_LEASE_MS: '1500',
  CAS_SHUTDOWN_TIMEOUT_MS: '1000',
};

export interface KilledWorkerRun {
  task: Task;
  /** The task once final. */
  done: Task;
  /** Lines of `<dir>/effects`: each side effect, as often as it ran. */
  effects: string[];
  /** Every event of the task, oldest first. */
  events(): Promise<AgentEvent[]>;
}

/**
 * Sets up (beforeAll/afterAll) a PostgreSQL runtime that only queues and a scratch folder; `run`
 * starts two worker processes of `agentsDir`, queues the task, SIGKILLs the worker holding it once
 * `killWhen` holds for the task's events, lets the agent go on and waits for the task's end.
 */
export function killedWorkerScenario(options: {
  agentsDir: string;
  /** Settings of this process's runtime and of the worker processes (CAS_RUNTIME, ...). */
  env?: Record<string, string>;
  agentId: string;
  action: string;
  killWhen: (events: AgentEvent[]) => boolean;
}): { runtime: () => TestRuntime; run: () => Promise<KilledWorkerRun> } {
  let t: TestRuntime;
  let dir: string;
  const workers: ServiceProcess[] = [];

  beforeAll(async () => {
    // This process only queues (it knows the agent to check input); worker processes run it.
    const agents = await loadAgents({ dir: options.agentsDir, explicit: true, cwd: ROOT });
    t = await openTestRuntime('postgres', { CAS_WORKERS: '0', ...options.env }, { agents });
    dir = await mkdtemp(path.join(tmpdir(), `cas-${options.agentId}-`));
  });
  afterAll(async () => {
    await Promise.all(workers.map((worker) => stopProcess(worker, 'SIGKILL')));
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const run = async (): Promise<KilledWorkerRun> => {
    const env = {
      ...WORKER_ENV,
      ...options.env,
      CAS_AGENTS_DIR: options.agentsDir,
      DATABASE_URL: t.testDb.url!,
    };
    workers.push(
      ...(await Promise.all(
        [1, 2].map(() => startProcess('src/server/worker-main.ts', env, 'worker started')),
      )),
    );
    const task = await t.runtime.executeTask({
      agentId: options.agentId,
      action: options.action,
      input: { dir },
      maxAttempts: 3,
    });
    const events = async () => (await t.runtime.getEventHistory({ taskId: task.id, first: 100 })).items;
    await until('the moment to kill the worker', async () =>
      options.killWhen(await events()) ? true : undefined,
    );
    const [running] = await t.runtime.getTasks([task.id]);
    const holder = workers.find((worker) => running!.workerId?.includes(`:${worker.child.pid}:`));
    expect(holder, `a worker process holds ${running!.workerId}`).toBeDefined();
    await stopProcess(holder!, 'SIGKILL');
    await writeFile(path.join(dir, 'go'), '');

    const done = await until('the task to finish', async () => {
      const [current] = await t.runtime.getTasks([task.id]);
      return current && ['succeeded', 'failed', 'cancelled'].includes(current.status) ? current : undefined;
    });
    const effects = (await readFile(path.join(dir, 'effects'), 'utf8')).trim().split('\n');
    return { task, done, effects, events };
  };
  return { runtime: () => t, run };
}
