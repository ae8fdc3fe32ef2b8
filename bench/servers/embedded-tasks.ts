/**
 * The task benchmark on the embedded database: PGlite in this process (in memory), the runtime's
 * in-process worker (CAS_WORKERS=1, concurrency BENCH_CONCURRENCY), tasks enqueued through the
 * runtime as `npm start` does. Prints "RESULT <json>" with both measurements and exits.
 */
import { loadConfig } from '../../src/config.js';
import { openPglite } from '../../src/db/pglite.js';
import { silentLogger } from '../../src/logger.js';
import { createRuntime } from '../../src/runtime/create-runtime.js';
import { casQueueDriver, checkCasRun } from '../lib/cas-queue.js';
import { measureStartLatency, measureThroughput } from '../lib/queue-measure.js';

const latencyTasks = Number(process.env.BENCH_LATENCY_TASKS ?? '500');
const paceMs = Number(process.env.BENCH_PACE_MS ?? '20');
const throughputTasks = Number(process.env.BENCH_THROUGHPUT_TASKS ?? '2000');
const throughputWarmupTasks = Number(process.env.BENCH_THROUGHPUT_WARMUP_TASKS ?? '0');
const concurrency = process.env.BENCH_CONCURRENCY ?? '10';
const throughputTimeoutMs = Number(process.env.BENCH_THROUGHPUT_TIMEOUT_MS ?? '60000');

async function open() {
  const db = await openPglite();
  const runtime = await createRuntime({
    config: loadConfig({ CAS_WORKERS: '1', CAS_WORKER_CONCURRENCY: concurrency, LOG_LEVEL: 'silent' }),
    database: db,
    logger: silentLogger(),
  });
  return { db, runtime };
}

const startedAt = performance.now();
const latencyRun = await open();
console.log(`embedded runtime ready (${Math.round(performance.now() - startedAt)} ms)`);
const latencyDriver = casQueueDriver('embedded latency', latencyRun.db, async (agentId) => {
  await latencyRun.runtime.executeTask({ agentId, action: 'ping' });
});
// Idle workers: let the start-up claim loop settle into waiting first.
await new Promise((resolve) => setTimeout(resolve, 500));
// Its samples stay here: the report keeps summaries.
const { samples: _samples, ...latency } = await measureStartLatency(latencyDriver, latencyTasks, paceMs);
const latencyCheck = await checkCasRun(latencyRun.db);
await latencyRun.runtime.shutdown({ deadlineMs: 1_000 });
console.log('embedded latency done');

const throughputRun = await open();
const throughputDriver = casQueueDriver('embedded throughput', throughputRun.db, async () => undefined);
await new Promise((resolve) => setTimeout(resolve, 500));
const throughput = await measureThroughput(
  throughputDriver,
  throughputTasks,
  throughputTimeoutMs,
  throughputWarmupTasks,
);
const throughputCheck = await checkCasRun(throughputRun.db, throughputTasks);
await throughputRun.runtime.shutdown({ deadlineMs: 1_000 });

console.log(`RESULT ${JSON.stringify({ latency, latencyCheck, throughput, throughputCheck })}`);
process.exit(0);
