/**
 * `npm start`: configuration from the environment and `.env` (none needed: embedded database in
 * .cas/data), the runtime, the HTTP server; one graceful shutdown on SIGTERM/SIGINT, however many
 * copies of one Ctrl-C arrive (see process-lifecycle.ts).
 */
import { loadConfig, type Config } from '../config.js';
import { createLogger } from '../logger.js';
import { loadAgents } from '../agents/loader.js';
import { loadWorkflows } from '../domains/workflow/define.js';
import { createRuntime } from '../runtime/create-runtime.js';
import { startTracing } from '../observability/tracing.js';
import { prepareDashboard } from '../dashboard/prepare.js';
import { buildApp } from './app.js';
import {
  exitOnShutdownSignal,
  exitOnStartupFailure,
  loadEnvFile,
  logSettingsSources,
  logUnhandledRejections,
} from './process-lifecycle.js';

let config: Config | undefined;

/** What a browser finds at the API's address: GraphiQL (off in production unless CAS_GRAPHIQL=true) and the dashboard. */
function readyExtras(graphiql: boolean, dashboardUrl: string | null): string {
  const extras = [
    ...(graphiql ? ['GraphiQL in a browser'] : []),
    ...(dashboardUrl ? [`dashboard at ${dashboardUrl}`] : []),
  ];
  return extras.length > 0 ? ` (${extras.join(', ')})` : '';
}

async function main() {
  const envFile = loadEnvFile();
  config = loadConfig(process.env);
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
  const [runtime, dashboard] = await Promise.all([
    createRuntime({ config, logger, agents, workflows }),
    config.dashboard ? prepareDashboard(logger) : null,
  ]);
  const app = buildApp({ config, runtime, logger, dashboard });

  const { shutdownTimeoutMs } = config;
  exitOnShutdownSignal(logger, async (signal) => {
    logger.info(
      { signal, deadlineMs: shutdownTimeoutMs },
      `shutting down: running tasks get ${shutdownTimeoutMs} ms to finish, then go back to the queue`,
    );
    await app.stop();
    await runtime.shutdown({ deadlineMs: shutdownTimeoutMs });
    await tracing?.shutdown();
    logger.info('stopped');
  });

  try {
    const { url } = await app.start();
    if (config.auth.mode === 'local') {
      logger.warn(
        { host: config.host, auth: 'local' },
        `no authentication configured: every caller is the local admin; listening on ${config.host} only (set SUPABASE_JWT_SECRET or SUPABASE_URL for real users, see docs/security.md)`,
      );
    }
    logger.info(
      { url, mode: config.mode, runtime: runtime.name, workers: config.workers },
      `CAS Runtime API ready at ${url}${readyExtras(config.graphiql, dashboard ? url.replace(/graphql$/, '') : null)}, ${config.mode} database`,
    );
  } catch (error) {
    // The workers may have claimed tasks already: hand them back before exiting.
    await runtime.shutdown({ deadlineMs: 0 });
    throw error;
  }
}

main().catch((error: unknown) => exitOnStartupFailure(error, config));
