import path from 'node:path';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { isNewDataDir, openPglite } from '../db/pglite.js';
import { findEmbeddedTemplate, copyEmbeddedTemplate } from '../db/embedded-template.js';
import { openPostgres, poolSize } from '../db/postgres.js';
import { silentLogger, type Logger } from '../logger.js';
import type { LoadedAgent } from '../agents/loader.js';
import type { DefinedWorkflow } from '../domains/workflow/define.js';
import type { AgentRuntime } from './agent-runtime.js';
import { databaseBackend, type Backend } from './backend.js';
import { CustomRuntime } from './custom-runtime.js';

export interface CreateRuntimeOptions {
  config: Config;
  logger?: Logger;
  /** A database to use instead of the one the configuration names; the runtime closes it. */
  database?: Database;
  /** A whole backend to use instead; the runtime closes it. */
  backend?: Backend;
  /** Agents in code (loadAgents): registered with their actions at start, before workers claim. */
  agents?: readonly LoadedAgent[];
  /** Workflows in code (loadWorkflows), started by id with executeWorkflow({ workflowId }). */
  workflows?: readonly DefinedWorkflow[];
}

/**
 * Opens the database the configuration names: embedded PGlite, or Postgres at DATABASE_URL.
 * Supabase mode has no database connection (see openBackend).
 */
export async function openDatabase(config: Config, logger: Logger = silentLogger()): Promise<Database> {
  switch (config.mode) {
    case 'postgres':
      return openPostgres({ connectionString: config.databaseUrl!, maxConnections: poolSize(config) });
    case 'embedded': {
      const dataDir = path.resolve(config.dataDir);
      // A first start copies the template `npm install` made, if it matches this code.
      const template = isNewDataDir(dataDir) ? await findEmbeddedTemplate() : null;
      return openPglite({
        dataDir,
        prepareNewDataDir: template
          ? (dir) => {
              logger.info({ dataDir: dir }, 'new embedded database: starting from the installed template');
              return copyEmbeddedTemplate(template, dir);
            }
          : undefined,
        onStaleLock: ({ file, pid }) =>
          logger.warn({ file, pid }, `took over the lock of process ${pid ?? '?'}, which no longer runs`),
      });
    }
    case 'supabase':
      throw new Error('Supabase mode reaches the database over HTTP: use openBackend, not openDatabase');
  }
}

/**
 * The backend the configuration names. DATABASE_URL wins for data when Supabase is configured too;
 * the feed then comes over Supabase Realtime if that database broadcasts (CAS_FEED, docs/supabase.md).
 */
export async function openBackend(config: Config, logger: Logger, database?: Database): Promise<Backend> {
  // supabase-js is loaded only when Supabase is configured (about 9 MB and 120 ms of start-up).
  if (!database && config.mode === 'supabase') {
    const { supabaseBackend } = await import('./supabase-backend.js');
    return supabaseBackend(config.supabase!, logger, poolSize(config));
  }
  const db = database ?? (await openDatabase(config, logger));
  const backend = databaseBackend(db, logger);
  if (!config.supabase) return backend;
  const { feedForDatabase } = await import('./supabase-backend.js');
  const feed = feedForDatabase(db, config, logger);
  return feed ? { ...backend, feed } : backend;
}

/** Creates the runtime CAS_RUNTIME selects, initialised (migrated, seeded, workers running). */
export async function createRuntime(options: CreateRuntimeOptions): Promise<CustomRuntime & AgentRuntime> {
  const { config, logger = silentLogger() } = options;
  const backend = options.backend ?? (await openBackend(config, logger, options.database));
  // LangGraph is loaded only by the runtime that needs it.
  const Runtime =
    config.runtime === 'langgraph'
      ? (await import('./langgraph/langgraph-runtime.js')).LangGraphRuntime
      : CustomRuntime;
  const runtime = new Runtime({
    config,
    backend,
    logger,
    agents: options.agents,
    workflows: options.workflows,
  });
  try {
    await runtime.initialize();
  } catch (error) {
    await runtime.shutdown({ deadlineMs: 0 }).catch(() => undefined);
    throw error;
  }
  return runtime;
}
