/**
 * Databases the sections start from: one migrated, seeded template on the PostgreSQL server,
 * copied per scenario, and a way to give the agents some history (tasks, state) so the dashboard
 * query has something to load.
 */
import type { AgentRuntime } from '../src/runtime/agent-runtime.js';
import { loadConfig } from '../src/config.js';
import { BUILT_IN_AGENT_IDS } from '../src/domains/agent/agent.js';
import { migrate } from '../src/db/migrate.js';
import { openPostgres } from '../src/db/postgres.js';
import { silentLogger } from '../src/logger.js';
import { createRuntime } from '../src/runtime/create-runtime.js';
import { createBenchDatabase, databaseUrl } from './lib/postgres.js';

export const BUILT_IN_AGENTS = BUILT_IN_AGENT_IDS;

/** Creates the migrated, seeded template database and returns its name. */
export async function createTemplate(): Promise<string> {
  const name = await createBenchDatabase('template');
  const db = openPostgres({ connectionString: databaseUrl(name), maxConnections: 1 });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  return name;
}

/**
 * Runs `tasksPerAgent` ping tasks to completion on every built-in agent and writes a state
 * version for each, with an in-process worker.
 */
export async function addHistory(url: string, tasksPerAgent: number): Promise<void> {
  await withWorkingRuntime(url, async (runtime) => {
    for (const agentId of BUILT_IN_AGENTS) {
      await runtime.updateAgentState(agentId, { note: `benchmark state of ${agentId}` });
      await Promise.all(
        Array.from({ length: tasksPerAgent }, () =>
          runtime.executeTask({ agentId, action: 'ping', wait: true, timeoutMs: 30_000 }),
        ),
      );
    }
  });
}

/** `work` on a runtime over the database at `url` with an in-process worker, shut down after. */
async function withWorkingRuntime(
  url: string,
  work: (runtime: AgentRuntime) => Promise<void>,
): Promise<void> {
  const runtime = await createRuntime({
    config: loadConfig({
      DATABASE_URL: url,
      CAS_WORKERS: '1',
      CAS_WORKER_POLL_MS: '100',
      LOG_LEVEL: 'silent',
    }),
    logger: silentLogger(),
  });
  try {
    await work(runtime);
  } finally {
    await runtime.shutdown({ deadlineMs: 1_000 });
  }
}

/**
 * Registers `count` more agents (`bench-000`, ...), a tenth of them with a state version and a
 * finished ping task, as test/graphql/dataloader.test.ts does: 192 make the 200-agent dashboard.
 */
export async function registerBenchAgents(
  runtime: Pick<AgentRuntime, 'registerAgent' | 'updateAgentState' | 'executeTask'>,
  count: number,
  options: { waitForTasks: boolean },
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const id = `bench-${String(i).padStart(3, '0')}`;
    await runtime.registerAgent({ id, name: `Bench ${i}`, role: 'bench' });
    if (i % 10 === 0) {
      await runtime.updateAgentState(id, { i });
      // Without a worker (waitForTasks false) the tasks stay queued, which the dashboard shows too.
      await runtime.executeTask({
        agentId: id,
        action: 'ping',
        wait: options.waitForTasks,
        timeoutMs: 30_000,
      });
    }
  }
}

/** registerBenchAgents on the database at `url`, with an in-process worker for the tasks. */
export async function addAgents(url: string, count: number): Promise<void> {
  await withWorkingRuntime(url, (runtime) => registerBenchAgents(runtime, count, { waitForTasks: true }));
}
