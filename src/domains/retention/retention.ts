import type { SqlFunctions } from '../../db/sql-functions.js';
import { toNumber } from '../../db/rows.js';

/** Rows one retention batch deleted; `skipped` when another process was pruning at that moment. */
export interface PruneBatch {
  skipped: boolean;
  tasks: number;
  events: number;
  logs: number;
  metricPoints: number;
  /** Finished workflow runs, with their steps. */
  workflowRuns: number;
}

interface PruneRow {
  skipped: boolean;
  tasks: unknown;
  events: unknown;
  logs: unknown;
  metric_points: unknown;
}

export const deletedRows = (batch: PruneBatch) =>
  batch.tasks + batch.events + batch.logs + batch.metricPoints + batch.workflowRuns;

export function retentionStore(sql: SqlFunctions) {
  return {
    /**
     * Deletes at most `batchSize` rows of each kind older than `retentionDays`, in one short
     * transaction (cas_prune_history), then as many finished workflow runs in another
     * (cas_prune_workflow_runs), unless another process is pruning.
     */
    async pruneBatch(retentionDays: number, batchSize: number): Promise<PruneBatch> {
      const [row] = await sql.rows<PruneRow>('cas_prune_history', {
        p_retention_days: retentionDays,
        p_batch_size: batchSize,
      });
      const skipped = Boolean(row!.skipped);
      const workflowRuns = skipped
        ? 0
        : toNumber(
            await sql.value('cas_prune_workflow_runs', {
              p_retention_days: retentionDays,
              p_batch_size: batchSize,
            }),
          );
      return {
        skipped,
        tasks: toNumber(row!.tasks),
        events: toNumber(row!.events),
        logs: toNumber(row!.logs),
        metricPoints: toNumber(row!.metric_points),
        workflowRuns,
      };
    },
  };
}
export type RetentionStore = ReturnType<typeof retentionStore>;
