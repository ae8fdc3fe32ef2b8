/**
 * Runs BENCH_PROCESSES copies of a server entry (BENCH_TARGET, e.g. src/server/main.ts) with
 * node:cluster, all on one port (PORT): the primary accepts connections and hands them to the
 * workers in turn (round robin), then the worker serves every request of that connection itself.
 * Used for 1 and 2 processes alike, so both counts pay the same. Prints "cluster ready" once every
 * worker listens; SIGTERM stops the workers (SIGTERM) and then itself.
 */
import cluster from 'node:cluster';
import { nodeArgsFor } from '../lib/child.js';

const target = process.env.BENCH_TARGET;
const count = Number(process.env.BENCH_PROCESSES ?? '1');
if (!target || !Number.isInteger(count) || count < 1) {
  console.error('BENCH_TARGET (a server entry) and BENCH_PROCESSES (>= 1) are required');
  process.exit(2);
}

const nodeArgs = nodeArgsFor(target);
cluster.setupPrimary({ exec: nodeArgs.at(-1)!, execArgv: nodeArgs.slice(0, -1) });
let listening = 0;
let stopping = false;
cluster.on('listening', (_worker, address) => {
  listening += 1;
  if (listening === count) console.log(`cluster ready: ${count} process(es) on port ${address.port}`);
});
cluster.on('exit', (worker, code, signal) => {
  if (stopping) return;
  console.error(`cluster worker ${worker.process.pid} exited (${code ?? signal}); stopping`);
  void stop(1);
});

const workers = Array.from({ length: count }, () => cluster.fork());

async function stop(exitCode: number) {
  if (stopping) return;
  stopping = true;
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          worker.once('exit', () => resolve());
          worker.process.kill('SIGTERM');
          setTimeout(() => worker.process.kill('SIGKILL'), 10_000).unref();
        }),
    ),
  );
  process.exit(exitCode);
}
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
