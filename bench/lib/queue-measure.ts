/**
 * The two task-engine measurements, for any queue (CAS on PostgreSQL or PGlite, graphile-worker):
 * - start latency: idle workers, jobs enqueued one at a time at a steady pace, latency from the
 *   database's own timestamps (enqueue transaction time to claim time);
 * - throughput: a backlog enqueued in one transaction, then the time until every job is done,
 *   observed by polling the queue every 10 ms.
 */
import { busyShare, cpuTimes } from './machine.js';
import { progress, sleep } from './progress.js';
import { summarize, type LatencySummary } from './stats.js';

export interface LatencyResult {
  /** Jobs measured, after `warmupJobs` left out (LATENCY_WARMUP_JOBS). */
  tasks: number;
  warmupJobs: number;
  paceMs: number;
  latency: LatencySummary;
  /** How far behind its schedule the enqueue loop finished (ms); large values mean a starved client. */
  scheduleSlipMs: number;
}

export interface ThroughputResult {
  tasks: number;
  /** Jobs done when the measurement ended: all of them, unless it timed out. */
  completed: number;
  /** The backlog was not done within the time limit; the rate counts the jobs that were. */
  timedOut: boolean;
  /** Time of the one-transaction enqueue of the backlog (not part of the rate). */
  enqueueSeconds: number;
  /** From the backlog's commit until the last job was seen done. */
  seconds: number;
  tasksPerSecond: number;
  /**
   * Share of the machine's CPU busy from the backlog's commit to the drain (every core and process:
   * workers, PostgreSQL, the benchmark's polling); unknown off Linux.
   */
  machineCpuBusy?: number;
}

export interface QueueDriver {
  label: string;
  enqueueOne(index: number): Promise<void>;
  enqueueMany(count: number): Promise<void>;
  /**
   * Whether any job is not finished yet: the drain's poll, every POLL_MS, so it must cost the
   * database next to nothing (an index probe, not a count), or the measuring would take CPU from
   * the queue it measures.
   */
  anyLeft(): Promise<boolean>;
  /** Jobs not finished yet (a count: for progress messages only). */
  remaining(): Promise<number>;
  /** Start latencies (ms) of the jobs enqueued so far, from database timestamps. */
  startLatencies(): Promise<number[]>;
}

const POLL_MS = 10;

/** How often a drain reports the jobs left while it waits. */
const PROGRESS_EVERY_MS = 3_000;

/** Polls until the queue is empty; resolves with the jobs left (0, or more on timeout). */
export async function waitUntilDrained(driver: QueueDriver, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let lastReport = performance.now();
  for (;;) {
    if (!(await driver.anyLeft())) return 0;
    if (performance.now() > deadline) {
      const left = await driver.remaining();
      progress(`${driver.label}: TIMED OUT after ${timeoutMs / 1000} s with ${left} job(s) left`);
      return left;
    }
    if (performance.now() - lastReport > PROGRESS_EVERY_MS) {
      progress(`${driver.label}: ${await driver.remaining()} job(s) left`);
      lastReport = performance.now();
    }
    await sleep(POLL_MS);
  }
}

/**
 * Jobs enqueued, at the same pace, before the measured ones and left out of the latency: a fresh
 * worker's first jobs pay for its first use of each code path and each pooled connection's first
 * plans (tens of milliseconds for a CAS worker's first few tasks), which is start-up, not the idle
 * steady state this row measures.
 */
export const LATENCY_WARMUP_JOBS = 20;

/** A latency run's summary and its samples (ms, one per job), which rounds of one system pool. */
export async function measureStartLatency(
  driver: QueueDriver,
  tasks: number,
  paceMs: number,
  timeoutMs = 120_000,
): Promise<LatencyResult & { samples: number[] }> {
  const started = performance.now();
  let lastReport = started;
  const jobs = LATENCY_WARMUP_JOBS + tasks;
  for (let index = 0; index < jobs; index++) {
    const due = started + index * paceMs;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    await driver.enqueueOne(index);
    if (performance.now() - lastReport > 3_000) {
      progress(`${driver.label}: enqueued ${index + 1}/${jobs}`);
      lastReport = performance.now();
    }
  }
  const scheduleSlipMs = Math.max(0, performance.now() - (started + (jobs - 1) * paceMs));
  const left = await waitUntilDrained(driver, timeoutMs);
  if (left > 0) throw new Error(`${driver.label}: ${left} job(s) still not done after ${timeoutMs} ms`);
  const all = await driver.startLatencies();
  if (all.length !== jobs) {
    throw new Error(`${driver.label}: ${all.length} start times recorded for ${jobs} jobs`);
  }
  const latencies = all.slice(LATENCY_WARMUP_JOBS);
  return {
    tasks,
    warmupJobs: LATENCY_WARMUP_JOBS,
    paceMs,
    latency: summarize(latencies),
    scheduleSlipMs,
    samples: latencies,
  };
}

/**
 * The rate of draining a backlog of `tasks`, after a backlog of `warmupTasks` drained by the same
 * workers and left out: a fresh worker process runs its first thousands of tasks in V8's
 * unoptimized tiers and its new database connections plan their statements, a cost each process
 * pays once, not per task. Measured on 2 cores, drains of 3,000 tasks one after the other: one CAS
 * worker's CPU per task 0.33 ms in the first, 0.19-0.21 ms from the second on; with 3 processes
 * (1,000 tasks each per drain) 0.51, 0.41, 0.34, 0.31, then 0.27-0.28 ms from the fifth. The HTTP
 * rows warm up for the same reason.
 */
export async function measureThroughput(
  driver: QueueDriver,
  tasks: number,
  timeoutMs: number,
  warmupTasks = 0,
): Promise<ThroughputResult> {
  if (warmupTasks > 0) {
    await driver.enqueueMany(warmupTasks);
    const left = await waitUntilDrained(driver, timeoutMs);
    if (left > 0) throw new Error(`${driver.label}: ${left} warm-up job(s) not done after ${timeoutMs} ms`);
  }
  const enqueueStarted = performance.now();
  await driver.enqueueMany(tasks);
  const committed = performance.now();
  const cpuAtCommit = cpuTimes();
  const left = await waitUntilDrained(driver, timeoutMs);
  const seconds = (performance.now() - committed) / 1000;
  const machineCpuBusy = busyShare(cpuAtCommit, cpuTimes());
  return {
    tasks,
    completed: tasks - left,
    timedOut: left > 0,
    enqueueSeconds: (committed - enqueueStarted) / 1000,
    seconds,
    tasksPerSecond: (tasks - left) / seconds,
    machineCpuBusy,
  };
}
