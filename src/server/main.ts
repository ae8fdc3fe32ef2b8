/**
 * `npm start`: configuration from the environment (none needed: embedded database in .cas/data),
 * the runtime, the HTTP server; graceful shutdown on SIGTERM/SIGINT (a second signal exits at once).
 */
import { ConfigError, loadConfig, type Config } from '../config.js';
import { createLogger } from '../logger.js';
import { createRuntime } from '../runtime/create-runtime.js';
import { buildApp } from './app.js';

/** How long running tasks get to finish on shutdown before they are handed back to the queue. */
const SHUTDOWN_DEADLINE_MS = 10_000;

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`cas-runtime-api: ${error.message}\nSee .env.example for every variable.`);
      process.exit(1);
    }
    throw error;
  }
}

async function main() {
  const config = readConfig();
  const logger = createLogger(config.logLevel);
  const runtime = await createRuntime({ config, logger });
  const app = buildApp({ config, runtime, logger });

  let shuttingDown = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    shuttingDown = true;
    logger.info({ signal }, 'shutting down');
    try {
      await app.stop();
      await runtime.shutdown({ deadlineMs: SHUTDOWN_DEADLINE_MS });
      logger.info('stopped');
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', (signal) => void shutdown(signal));
  process.on('SIGINT', (signal) => void shutdown(signal));

  const { url } = await app.start();
  if (config.auth.mode === 'local') {
    logger.warn(
      { host: config.host, auth: 'local' },
      `no authentication configured: every caller is the local admin; listening on ${config.host} only (set SUPABASE_JWT_SECRET or SUPABASE_URL for real users, see docs/security.md)`,
    );
  }
  logger.info(
    { url, mode: config.mode, runtime: runtime.name, workers: config.workers },
    `CAS Runtime API ready at ${url} (GraphiQL in a browser), ${config.mode} database`,
  );
}

main().catch((error: unknown) => {
  console.error('cas-runtime-api failed to start:', error);
  process.exit(1);
});
