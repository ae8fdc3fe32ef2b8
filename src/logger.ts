import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

/** pino-pretty is required only for readable output: JSON logs (a service, the benchmark) skip it. */
const loadPretty = (): typeof import('pino-pretty') =>
  createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');

export type { Logger };

/** CAS_LOG_FORMAT: 'auto' is pretty on a terminal (a person reads it), JSON lines otherwise. */
export type LogFormat = 'auto' | 'json' | 'pretty';

const OPTIONS = { base: { service: 'cas-runtime-api' }, timestamp: pino.stdTimeFunctions.isoTime };

/**
 * Logs on stdout: one JSON object per line for log collectors, or readable coloured lines
 * (pino-pretty, written synchronously in this process so nothing is lost at exit).
 */
export function createLogger(level = 'info', format: LogFormat = 'json'): Logger {
  const readable = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  if (!readable) return pino({ ...OPTIONS, level });
  return pino(
    { ...OPTIONS, level },
    loadPretty()({ sync: true, colorize: process.stdout.isTTY === true, ignore: 'service,pid,hostname' }),
  );
}

/** For tests and embedding: a logger that writes nothing. */
export const silentLogger = (): Logger => pino({ level: 'silent' });
