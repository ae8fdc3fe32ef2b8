/**
 * What `npm start` and `npm run worker` share as processes: reading `.env`, warning about unknown
 * settings, turning signals into one graceful shutdown, and reporting a failed start in a line or
 * two instead of a stack.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { unknownVariableWarnings } from '../config.js';
import type { Logger } from '../logger.js';
import { describeStartupError, type StartupContext } from './startup-errors.js';

/** The settings file read from the working directory at start, if it exists. */
export const ENV_FILE = '.env';

/**
 * A repeat of the shutdown signal within this long of the first is the same request. One Ctrl-C
 * reaches a process more than once: the terminal signals the whole process group and `npm`
 * forwards the signal to its child again. A signal after this window is a deliberate second
 * Ctrl-C and exits at once.
 */
export const REPEATED_SIGNAL_WINDOW_MS = 1000;

const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Loads `.env` from the working directory into process.env. A variable already set in the
 * environment wins over the file. Returns the file's path, or undefined when there is none.
 */
export function loadEnvFile(file = ENV_FILE): string | undefined {
  if (!existsSync(file)) return undefined;
  process.loadEnvFile(file);
  return path.resolve(file);
}

/** Logs where the settings came from and each CAS_* variable that is likely a typo. */
export function logSettingsSources(logger: Logger, envFile: string | undefined): void {
  if (envFile) logger.info({ file: envFile }, `settings from ${envFile} (the environment wins over it)`);
  for (const warning of unknownVariableWarnings(process.env)) logger.warn(warning);
}

/**
 * Turns SIGINT and SIGTERM into one call of `shutdown`, then exits 0 (1 if it throws). Repeats
 * within REPEATED_SIGNAL_WINDOW_MS are ignored; a later signal exits at once with code 1 (tasks
 * still running then return to the queue when their leases expire).
 */
export function exitOnShutdownSignal(
  logger: Logger,
  shutdown: (signal: NodeJS.Signals) => Promise<void>,
): void {
  let firstSignalAt: number | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstSignalAt === null) {
      firstSignalAt = performance.now();
      shutdown(signal).then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
      return;
    }
    if (performance.now() - firstSignalAt < REPEATED_SIGNAL_WINDOW_MS) {
      logger.debug({ signal }, 'the same shutdown request again: ignored');
      return;
    }
    logger.warn(
      { signal },
      'second signal: exiting now; running tasks return to the queue when their leases expire',
    );
    process.exit(1);
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal);
}

/**
 * Agent handlers are deployers' code running in this process: a promise one of them leaves
 * unawaited must not take every other task and subscription down with it (Node's default for an
 * unhandled rejection is to exit). It is logged as an error instead.
 */
export function logUnhandledRejections(logger: Logger): void {
  process.on('unhandledRejection', (reason) => {
    logger.error(
      { err: reason },
      'unhandled promise rejection (an agent handler left a promise unawaited?); the process keeps running',
    );
  });
}

const showsStacks = () => ['debug', 'trace'].includes(process.env.LOG_LEVEL ?? '');

/** Prints what went wrong at start (the stack too at LOG_LEVEL=debug) and exits 1. */
export function exitOnStartupFailure(error: unknown, context: StartupContext = {}): never {
  const { lines, understood } = describeStartupError(error, context);
  const prefixed = `cas-runtime-api: ${lines}`;
  if (showsStacks()) console.error(prefixed, '\n', error);
  else console.error(understood ? prefixed : `${prefixed}\n(LOG_LEVEL=debug shows the stack)`);
  process.exit(1);
}
