import { z } from 'zod';
import type { SqlFunctions } from '../../db/sql-functions.js';
import { toDate, toNumber, toNumberOrNull } from '../../db/rows.js';
import { agentId, dateTime } from '../../validation.js';

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

/** One time bucket of a metric: its points' count and distribution (computed in SQL). */
export interface MetricBucket {
  /** Start of the bucket; buckets are aligned to the epoch. */
  start: Date;
  count: number;
  avg: number;
  p50: number;
  p95: number;
  max: number;
}

/** Range of metricSeries when `from`/`to` are not given: the last hour. */
export const DEFAULT_METRIC_RANGE_MS = 3_600_000;
/** Buckets the range is split into when no bucket width is given. */
export const DEFAULT_METRIC_BUCKETS = 60;
/** At most this many buckets per request, so one chart query stays cheap. */
export const MAX_METRIC_BUCKETS = 1_000;
/** The widest bucket: a day. */
export const MAX_METRIC_BUCKET_SECONDS = 86_400;

export const metricBucketsInput = z
  .object({
    agentId: agentId,
    name: z.string().min(1).max(200),
    from: dateTime.nullish(),
    to: dateTime.nullish(),
    bucketSeconds: z.number().int().min(1).max(MAX_METRIC_BUCKET_SECONDS).nullish(),
  })
  .transform((input, ctx) => {
    const to = input.to ?? new Date();
    const from = input.from ?? new Date(to.getTime() - DEFAULT_METRIC_RANGE_MS);
    const rangeSeconds = (to.getTime() - from.getTime()) / 1000;
    if (rangeSeconds <= 0) {
      ctx.addIssue({ code: 'custom', message: '"from" must be earlier than "to"', path: ['from'] });
      return z.NEVER;
    }
    const bucketSeconds =
      input.bucketSeconds ?? Math.max(1, Math.ceil(rangeSeconds / DEFAULT_METRIC_BUCKETS));
    if (rangeSeconds / bucketSeconds > MAX_METRIC_BUCKETS) {
      ctx.addIssue({
        code: 'custom',
        message: `the range holds more than ${MAX_METRIC_BUCKETS} buckets of ${bucketSeconds} s; use a wider bucket or a shorter range`,
        path: ['bucket'],
      });
      return z.NEVER;
    }
    return { agentId: input.agentId, name: input.name, from, to, bucketSeconds };
  });
export type MetricBucketsInput = z.input<typeof metricBucketsInput>;

/** Tokens a task's model requests used (metric points llm_prompt_tokens, llm_completion_tokens). */
export interface TokenUsage {
  taskId: string;
  promptTokens: number;
  completionTokens: number;
  /** Model requests that reported usage. */
  requests: number;
}

export function metricStore(sql: SqlFunctions) {
  return {
    /** Token usage of the tasks that have any (others are absent). */
    async tokenUsage(taskIds: readonly string[]): Promise<TokenUsage[]> {
      const rows = await sql.rows<{
        task_id: string;
        prompt_tokens: unknown;
        completion_tokens: unknown;
        requests: unknown;
      }>('cas_task_token_usage', { p_task_ids: [...taskIds] });
      return rows.map((row) => ({
        taskId: row.task_id,
        promptTokens: toNumber(row.prompt_tokens),
        completionTokens: toNumber(row.completion_tokens),
        requests: toNumber(row.requests),
      }));
    },
    /** Metrics of each given agent over the range, computed in SQL (unknown agents are absent). */
    async forAgents(agentIds: readonly string[], range: z.output<typeof timeRange>): Promise<AgentMetrics[]> {
      const rows = await sql.rows<MetricsRow>('cas_agent_metrics', {
        p_agent_ids: [...agentIds],
        p_from: range.from ?? null,
        p_to: range.to ?? null,
      });
      return rows.map(metricsFromRow);
    },
    /** The metric's points in time buckets over [from, to), oldest first, empty buckets left out. */
    async buckets(input: z.output<typeof metricBucketsInput>): Promise<MetricBucket[]> {
      const rows = await sql.rows<{
        bucket_start: unknown;
        points: unknown;
        avg_value: unknown;
        p50: unknown;
        p95: unknown;
        max_value: unknown;
      }>('cas_metric_buckets', {
        p_agent_id: input.agentId,
        p_metric_name: input.name,
        p_from: input.from,
        p_to: input.to,
        p_bucket_seconds: input.bucketSeconds,
      });
      return rows.map((row) => ({
        start: toDate(row.bucket_start),
        count: toNumber(row.points),
        avg: toNumber(row.avg_value),
        p50: toNumber(row.p50),
        p95: toNumber(row.p95),
        max: toNumber(row.max_value),
      }));
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
