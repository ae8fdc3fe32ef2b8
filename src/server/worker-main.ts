/**
 * `npm run worker`: a process that only runs tasks (no HTTP). Start as many as the load needs;
 * they share the database with the API processes.
 */
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { createRuntime } from '../runtime/create-runtime.js';

async function main() {
  const config = loadConfig();
  if (config.mode === 'embedded') {
    throw new ConfigError(
      'a separate worker process needs a shared database: set DATABASE_URL (the embedded database belongs to one process; `npm start` runs its own worker)',
    );
  }
  const logger = createLogger(config.logLevel);
  const runtime = await createRuntime({
    config: { ...config, workers: Math.max(config.workers, 1) },
    logger,
  });
  logger.info(
    { mode: config.mode, workers: Math.max(config.workers, 1), concurrency: config.workerConcurrency },
    'worker started',
  );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, deadlineMs: config.shutdownTimeoutMs }, 'worker stopping');
    runtime.shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'worker shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
