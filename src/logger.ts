import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stdout, one object per line. */
export function createLogger(level = 'info'): Logger {
  return pino({ level, base: { service: 'cas-runtime-api' }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** For tests and embedding: a logger that writes nothing. */
export const silentLogger = (): Logger => pino({ level: 'silent' });
