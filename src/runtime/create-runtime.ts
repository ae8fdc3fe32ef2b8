import path from 'node:path';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { openPglite } from '../db/pglite.js';
import {
  buildEmbeddedTemplateInChild,
  copyEmbeddedTemplate,
  findEmbeddedTemplate,
} from '../db/embedded-template.js';
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

/** Options of `openDatabase`. */
export interface OpenDatabaseOptions {
  /** Where embedded templates are found and built; @default TEMPLATE_DIR (node_modules/.cache). */
  templateDir?: string;
  /** Told the pid of the child process that builds a missing embedded template (tests stop it). */
  onTemplateBuild?: (pid: number) => void;
}

/**
 * The template a new embedded data folder starts from: the one `npm install` made if it matches
 * this code, else one built now in a child process (after a pull that changed the migrations).
 * Null when that build fails: the database is then initialised and migrated in this process.
 */
async function templateForNewDataDir(logger: Logger, options: OpenDatabaseOptions): Promise<string | null> {
  const installed = await findEmbeddedTemplate(options.templateDir);
  if (installed) return installed;
  logger.info(
    'new embedded database: building the template for these migrations first (once, in a child process)',
  );
  try {
    return await buildEmbeddedTemplateInChild({
      templateDir: options.templateDir,
      onSpawn: options.onTemplateBuild,
    });
  } catch (error) {
    logger.warn(
      { err: error },
      'no embedded template could be built: migrating the new database in this process (slower, and it stays larger)',
    );
    return null;
  }
}

/**
 * Opens the database the configuration names: embedded PGlite, or Postgres at DATABASE_URL.
 * Supabase mode has no database connection (see openBackend).
 */
export async function openDatabase(
  config: Config,
  logger: Logger = silentLogger(),
  options: OpenDatabaseOptions = {},
): Promise<Database> {
  switch (config.mode) {
    case 'postgres': {
      // node-postgres is loaded only when a server is configured: the embedded default never uses it.
      const { openPostgres, poolSize } = await import('../db/postgres.js');
      return openPostgres({
        connectionString: config.databaseUrl!,
        maxConnections: poolSize(config),
        preparedStatements: config.preparedStatements,
      });
    }
    case 'embedded':
      return openPglite({
        dataDir: path.resolve(config.dataDir),
        // A first start copies a migrated template (once this process holds the folder's lock).
        async prepareNewDataDir(dir) {
          const template = await templateForNewDataDir(logger, options);
          if (!template) return;
          logger.info({ dataDir: dir }, 'new embedded database: starting from the installed template');
          await copyEmbeddedTemplate(template, dir);
        },
        onStaleLock: ({ file, pid }) =>
          logger.warn({ file, pid }, `took over the lock of process ${pid ?? '?'}, which no longer runs`),
        onVacuumError: (error) => logger.warn({ err: error }, 'vacuuming the embedded database failed'),
      });
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
    const [{ supabaseBackend }, { poolSize }] = await Promise.all([
      import('./supabase-backend.js'),
      import('../db/postgres.js'),
    ]);
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
