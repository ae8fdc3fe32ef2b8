import type { LoadedAgent } from '../../src/agents/loader.js';
import type { DefinedWorkflow } from '../../src/domains/workflow/define.js';
import { loadConfig } from '../../src/config.js';
import type { Database } from '../../src/db/database.js';
import { silentLogger } from '../../src/logger.js';
import { createRuntime } from '../../src/runtime/create-runtime.js';
import type { CustomRuntime } from '../../src/runtime/custom-runtime.js';
import { openTestDatabase, type TestDatabase, type TestDatabaseKind } from './databases.js';

export interface TestRuntime {
  runtime: CustomRuntime;
  testDb: TestDatabase;
  db: Database;
  close(): Promise<void>;
}

/**
 * The runtime the suites run on: the vitest project 'langgraph' sets CAS_RUNTIME=langgraph (and
 * a developer may: `CAS_RUNTIME=langgraph npx vitest run test/runtime`); custom otherwise.
 */
export const testRuntimeName = process.env.CAS_RUNTIME === 'langgraph' ? 'langgraph' : 'custom';

/** Settings that keep tests quick: short polls and leases. */
export const FAST_RUNTIME_ENV = {
  CAS_WORKER_POLL_MS: '100',
  CAS_TASK_LEASE_MS: '3000',
  CAS_ABORT_GRACE_MS: '300',
  CAS_SHUTDOWN_TIMEOUT_MS: '1000',
  CAS_RUNTIME: testRuntimeName,
};

/**
 * A runtime on a fresh per-file database of `kind`, with one in-process worker unless `env` says
 * otherwise. For 'supabase' the runtime is configured with the SUPABASE_URL in front of the
 * database and reaches it through supabase-js only, as in production.
 */
export async function openTestRuntime(
  kind: TestDatabaseKind,
  env: Record<string, string> = {},
  /** Agents in code (loadAgents), registered at start as `npm start` does. */
  options: { agents?: readonly LoadedAgent[]; workflows?: readonly DefinedWorkflow[] } = {},
): Promise<TestRuntime> {
  const testDb = await openTestDatabase(kind);
  let runtime: CustomRuntime;
  try {
    runtime = await createRuntime(
      testDb.env
        ? {
            config: loadConfig({ ...FAST_RUNTIME_ENV, ...env, ...testDb.env }),
            logger: silentLogger(),
            agents: options.agents,
            workflows: options.workflows,
          }
        : {
            config: loadConfig({ ...FAST_RUNTIME_ENV, ...env }),
            database: testDb.db,
            logger: silentLogger(),
            agents: options.agents,
            workflows: options.workflows,
          },
    );
  } catch (error) {
    await testDb.close();
    throw error;
  }
  return {
    runtime,
    testDb,
    db: testDb.db,
    close: async () => {
      await runtime.shutdown();
      await testDb.close();
    },
  };
}

/** Row counts of every cas_ table: equal before and after means a call wrote nothing. */
export async function tableCounts(db: Database): Promise<Record<string, number>> {
  const tables = [
    'cas_agents',
    'cas_agent_status',
    'cas_agent_events',
    'cas_tasks',
    'cas_agent_config',
    'cas_agent_logs',
    'cas_metrics_timeseries',
  ];
  const [row] = await db.query<Record<string, number>>(
    `select ${tables.map((table) => `(select count(*)::int from ${table}) as ${table}`).join(', ')}`,
  );
  return row!;
}

/** Snapshot of the rows a call could change, to compare before and after. */
export async function databaseSnapshot(db: Database): Promise<string> {
  const [row] = await db.query<{ snapshot: string }>(`
    select md5(concat_ws('|',
      (select string_agg(a::text, ',' order by a.id) from cas_agents a),
      (select string_agg(v.status || v.running_tasks, ',' order by v.id) from cas_agents_view v),
      (select string_agg(c::text, ',' order by c.id) from cas_agent_config c),
      (select string_agg(t.id || t.status, ',' order by t.seq) from cas_tasks t),
      (select last_seq::text from cas_event_sequence)
    )) as snapshot`);
  return row!.snapshot;
}
