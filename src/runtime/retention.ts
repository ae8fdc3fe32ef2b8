import { deletedRows, type PruneBatch, type RetentionStore } from '../domains/retention/retention.js';
import type { Logger } from '../logger.js';

/** How often a worker process prunes history. Old rows wait at most this long past their age. */
export const RETENTION_INTERVAL_MS = 60 * 60 * 1000;
/** The first run after start: late enough to stay out of start-up, soon enough for short-lived processes. */
export const RETENTION_FIRST_RUN_DELAY_MS = 60 * 1000;
/** Rows of each kind one transaction deletes: small, so locks are brief and the queue never waits. */
export const RETENTION_BATCH_SIZE = 500;
/** Batches one run deletes at most; the rest waits for the next run, so a run has a bounded length. */
export const RETENTION_MAX_BATCHES_PER_RUN = 200;

/**
 * Deletes history older than CAS_RETENTION_DAYS (cas_prune_history, cas_prune_workflow_runs), batch after batch, once per
 * RETENTION_INTERVAL_MS and once RETENTION_FIRST_RUN_DELAY_MS after start. Every worker process runs one; the SQL function
 * takes an advisory try-lock, so only one process prunes at a time and the others skip.
 */
export class RetentionJob {
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<unknown> | null = null;
  private stopped = false;

  constructor(
    private readonly store: RetentionStore,
    private readonly retentionDays: number,
    private readonly logger: Logger,
    private readonly intervalMs = RETENTION_INTERVAL_MS,
  ) {}

  start(): void {
    if (this.retentionDays === 0 || this.timers.length > 0) return;
    const tick = () => {
      this.running ??= this.runOnce()
        .catch((error: unknown) =>
          this.logger.warn({ err: error }, 'pruning old history failed; retrying later'),
        )
        .finally(() => {
          this.running = null;
        });
    };
    this.timers = [setTimeout(tick, RETENTION_FIRST_RUN_DELAY_MS), setInterval(tick, this.intervalMs)];
    for (const timer of this.timers) timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
    await this.running;
  }

  /** Prunes until a batch deletes nothing, another process prunes, or the run's cap is reached. */
  async runOnce(batchSize = RETENTION_BATCH_SIZE): Promise<PruneBatch> {
    const total: PruneBatch = {
      skipped: false,
      tasks: 0,
      events: 0,
      logs: 0,
      metricPoints: 0,
      workflowRuns: 0,
    };
    for (let batch = 0; batch < RETENTION_MAX_BATCHES_PER_RUN && !this.stopped; batch += 1) {
      const deleted = await this.store.pruneBatch(this.retentionDays, batchSize);
      if (deleted.skipped) return { ...total, skipped: true };
      if (deletedRows(deleted) === 0) break;
      total.tasks += deleted.tasks;
      total.events += deleted.events;
      total.logs += deleted.logs;
      total.metricPoints += deleted.metricPoints;
      total.workflowRuns += deleted.workflowRuns;
    }
    if (deletedRows(total) > 0)
      this.logger.info({ deleted: total }, 'pruned history older than the retention');
    return total;
  }
}
