/**
 * Databases the sections start from: one migrated, seeded template on the PostgreSQL server,
 * copied per scenario, and a way to give the agents some history (tasks, state) so the dashboard
 * query has something to load.
 */
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
    for (const agentId of BUILT_IN_AGENTS) {
      await runtime.updateAgentState(agentId, { note: `benchmark state of ${agentId}` });
      await Promise.all(
        Array.from({ length: tasksPerAgent }, () =>
          runtime.executeTask({ agentId, action: 'ping', wait: true, timeoutMs: 30_000 }),
        ),
      );
    }
  } finally {
    await runtime.shutdown({ deadlineMs: 1_000 });
  }
}
