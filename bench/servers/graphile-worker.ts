/**
 * A graphile-worker process for the side-by-side: one no-op task ("noop"), BENCH_CONCURRENCY
 * jobs at once, on DATABASE_URL (its schema must exist: the benchmark runs its migrations first).
 * Its logger prints only errors, as the CAS worker's does at "info" on a quiet run.
 */
import { Logger, run } from 'graphile-worker';

const logger = new Logger(() => (level, message) => {
  if (level === 'error') console.error(message);
});

const runner = await run({
  connectionString: process.env.DATABASE_URL!,
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? '10'),
  noHandleSignals: true,
  logger,
  taskList: {
    noop: async () => undefined,
  },
});
console.log('graphile worker started');

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  runner.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
