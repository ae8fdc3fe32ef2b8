import { z } from 'zod';
import type { SqlFunctions } from '../../db/sql-functions.js';
import { toDate, toNumber, toNumberOrNull } from '../../db/rows.js';
import { dateTime } from '../../validation.js';

export interface AgentMetrics {
  agentId: string;
  /** Tasks that reached a final status in the range. */
  totalRuns: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  /** Mean duration of the final attempt of succeeded and failed tasks; null without any. */
  avgDurationMs: number | null;
  /** succeeded / totalRuns, 0 when there were no runs. */
  successRate: number;
  /** failed / totalRuns, 0 when there were no runs. */
  errorRate: number;
  /** Seconds since the agent last became available; 0 while stopped. */
  uptimeSeconds: number;
}

export interface MetricPoint {
  value: number;
  tags: Record<string, unknown>;
  recordedAt: Date;
}

export const timeRange = z
  .object({ from: dateTime.nullish(), to: dateTime.nullish() })
  .refine((range) => !range.from || !range.to || range.from <= range.to, {
    message: '"from" must not be later than "to"',
    path: ['from'],
  });
export type TimeRange = z.input<typeof timeRange>;

interface MetricsRow {
  agent_id: string;
  total_runs: unknown;
  succeeded: unknown;
  failed: unknown;
  cancelled: unknown;
  avg_duration_ms: unknown;
  uptime_seconds: unknown;
}

const ratio = (part: number, whole: number) => (whole === 0 ? 0 : part / whole);

const metricsFromRow = (row: MetricsRow): AgentMetrics => {
  const totalRuns = toNumber(row.total_runs);
  const succeeded = toNumber(row.succeeded);
  const failed = toNumber(row.failed);
  return {
    agentId: row.agent_id,
    totalRuns,
    succeeded,
    failed,
    cancelled: toNumber(row.cancelled),
    avgDurationMs: toNumberOrNull(row.avg_duration_ms),
    successRate: ratio(succeeded, totalRuns),
    errorRate: ratio(failed, totalRuns),
    uptimeSeconds: toNumber(row.uptime_seconds),
  };
};

export function metricStore(sql: SqlFunctions) {
  return {
    /** Metrics of each given agent over the range, computed in SQL (unknown agents are absent). */
    async forAgents(agentIds: readonly string[], range: z.output<typeof timeRange>): Promise<AgentMetrics[]> {
      const rows = await sql.rows<MetricsRow>('cas_agent_metrics', {
        p_agent_ids: [...agentIds],
        p_from: range.from ?? null,
        p_to: range.to ?? null,
      });
      return rows.map(metricsFromRow);
    },
    async series(
      agentId: string,
      metricName: string,
      range: z.output<typeof timeRange>,
      limit: number,
    ): Promise<MetricPoint[]> {
      const rows = await sql.rows<{ value: unknown; tags: Record<string, unknown>; recorded_at: unknown }>(
        'cas_metric_series',
        {
          p_agent_id: agentId,
          p_metric_name: metricName,
          p_from: range.from ?? null,
          p_to: range.to ?? null,
          p_limit: limit,
        },
      );
      return rows.map((row) => ({
        value: toNumber(row.value),
        tags: row.tags,
        recordedAt: toDate(row.recorded_at),
      }));
    },
  };
}
export type MetricStore = ReturnType<typeof metricStore>;
