/**
 * `npm run worker`: a process that only runs tasks (no HTTP). Start as many as the load needs;
 * they share the database with the API processes. Settings, signals and start-up failures are
 * handled as for `npm start` (process-lifecycle.ts).
 */
import { ConfigError, loadConfig, type Config } from '../config.js';
import { createLogger } from '../logger.js';
import { loadAgents } from '../agents/loader.js';
import { loadWorkflows } from '../domains/workflow/define.js';
import { createRuntime } from '../runtime/create-runtime.js';
import { startTracing } from '../observability/tracing.js';
import { serveMetrics } from '../observability/metrics-endpoint.js';
import {
  exitOnShutdownSignal,
  exitOnStartupFailure,
  loadEnvFile,
  logSettingsSources,
  logUnhandledRejections,
} from './process-lifecycle.js';

let config: Config | undefined;

async function main() {
  const envFile = loadEnvFile();
  const loaded = loadConfig(process.env);
  if (loaded.mode === 'embedded') {
    throw new ConfigError(
      'a separate worker process needs a shared database: set DATABASE_URL (the embedded database belongs to one process; `npm start` runs its own worker)',
    );
  }
  config = { ...loaded, workers: Math.max(loaded.workers, 1) };
  const logger = createLogger(config.logLevel, config.logFormat);
  logSettingsSources(logger, envFile);
  logUnhandledRejections(logger);
  // Before anything makes a span: the SDK must be registered first (no-op when OTEL_* is unset).
  const tracing = await startTracing(config.tracing, logger);
  // Before the database: a broken agent or workflow file stops start-up at once, naming the file.
  const agents = await loadAgents({ dir: config.agentsDir.path, explicit: config.agentsDir.explicit });
  const workflows = await loadWorkflows({
    dir: config.workflowsDir.path,
    explicit: config.workflowsDir.explicit,
  });
  const runtime = await createRuntime({ config, logger, agents, workflows });
  const { host, metrics } = config;
  const metricsServer =
    metrics.port === undefined
      ? null
      : await serveMetrics({
          host,
          port: metrics.port,
          metrics: runtime.processMetrics,
          token: metrics.token,
          logger,
        });
  const { shutdownTimeoutMs } = config;
  exitOnShutdownSignal(logger, async (signal) => {
    logger.info({ signal, deadlineMs: shutdownTimeoutMs }, 'worker stopping');
    await metricsServer?.close();
    await runtime.shutdown({ deadlineMs: shutdownTimeoutMs });
    await tracing?.shutdown();
  });
  logger.info(
    {
      mode: config.mode,
      workers: config.workers,
      concurrency: config.workerConcurrency,
      metrics: metricsServer?.url ?? 'off (set CAS_METRICS_PORT)',
    },
    'worker started',
  );
}

main().catch((error: unknown) => exitOnStartupFailure(error, config));
