import path from 'node:path';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { openPglite } from '../db/pglite.js';
import { openPostgres } from '../db/postgres.js';
import { notImplemented } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import type { AgentRuntime } from './agent-runtime.js';
import { databaseBackend, type Backend } from './backend.js';
import { CustomRuntime } from './custom-runtime.js';

export interface CreateRuntimeOptions {
  config: Config;
  logger?: Logger;
  /** A database to use instead of the one the configuration names; the runtime closes it. */
  database?: Database;
  /** A whole backend to use instead (Supabase mode in tests); the runtime closes it. */
  backend?: Backend;
}

/** Opens the database the configuration names: embedded PGlite, or Postgres at DATABASE_URL. */
export async function openDatabase(config: Config): Promise<Database> {
  switch (config.mode) {
    case 'postgres':
      return openPostgres({
        connectionString: config.databaseUrl!,
        maxConnections: config.workerConcurrency + 5,
      });
    case 'embedded':
      return openPglite({ dataDir: path.resolve(config.dataDir) });
    case 'supabase':
      throw notImplemented('Supabase mode (SUPABASE_URL without DATABASE_URL)');
  }
}

/** Creates the runtime CAS_RUNTIME selects, initialised (migrated, seeded, workers running). */
export async function createRuntime(options: CreateRuntimeOptions): Promise<CustomRuntime & AgentRuntime> {
  const { config, logger = silentLogger() } = options;
  const backend =
    options.backend ?? databaseBackend(options.database ?? (await openDatabase(config)), logger);
  const runtime = new CustomRuntime({ config, backend, logger });
  try {
    await runtime.initialize();
  } catch (error) {
    await runtime.shutdown({ deadlineMs: 0 }).catch(() => undefined);
    throw error;
  }
  return runtime;
}
