import { z } from 'zod';
import type { AgentMetrics, MetricPoint } from '../../domains/metric/metric.js';

/** Duration points read per agent for the percentiles (the most recent ones in the range). */
export const DURATION_SAMPLE_POINTS = 5000;
/** Actions listed as slowest. */
export const SLOWEST_ACTIONS = 5;

/** What analyze_metrics reads of the runtime. */
export interface MetricsReads {
  agentIds(): Promise<string[]>;
  metrics(
    agentIds: readonly string[],
    range: { from: Date | null; to: Date | null },
  ): Promise<AgentMetrics[]>;
  durations(
    agentId: string,
    range: { from: Date | null; to: Date | null },
    limit: number,
  ): Promise<MetricPoint[]>;
}

export const analyzeMetricsInput = z
  .object({
    agentIds: z.array(z.string().min(1).max(63)).min(1).max(100).optional(),
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
  })
  .nullish()
  .transform((value) => value ?? {});

const agentReport = z.object({
  agentId: z.string(),
  totalRuns: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  cancelled: z.number().int(),
  successRate: z.number(),
  errorRate: z.number(),
  p50DurationMs: z.number().nullable(),
  p95DurationMs: z.number().nullable(),
  durationSamples: z.number().int(),
});

export const analyzeMetricsOutput = z.object({
  from: z.string().nullable(),
  to: z.string().nullable(),
  agents: z.array(agentReport),
  slowestActions: z.array(
    z.object({
      agentId: z.string(),
      action: z.string(),
      p95DurationMs: z.number(),
      samples: z.number().int(),
    }),
  ),
  /** A model-written summary when a provider is configured; null otherwise. */
  summary: z.string().nullable(),
});
export type MetricsReport = z.output<typeof analyzeMetricsOutput>;

/** The nearest-rank percentile (0..100) of `values`; null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** The deterministic report: volumes, rates, p50/p95 durations and the slowest actions. */
export async function computeMetricsReport(
  reads: MetricsReads,
  input: z.output<typeof analyzeMetricsInput>,
): Promise<Omit<MetricsReport, 'summary'>> {
  const range = { from: input.from ? new Date(input.from) : null, to: input.to ? new Date(input.to) : null };
  const ids = input.agentIds ?? (await reads.agentIds());
  const metrics = await reads.metrics(ids, range);
  const byAction: Array<{ agentId: string; action: string; values: number[] }> = [];
  const agents = [];
  for (const row of [...metrics].sort((a, b) => a.agentId.localeCompare(b.agentId))) {
    const points = await reads.durations(row.agentId, range, DURATION_SAMPLE_POINTS);
    const values = points.map((point) => point.value);
    const actions = new Map<string, number[]>();
    for (const point of points) {
      const action = typeof point.tags.action === 'string' ? point.tags.action : '(unknown)';
      actions.set(action, [...(actions.get(action) ?? []), point.value]);
    }
    for (const [action, actionValues] of actions)
      byAction.push({ agentId: row.agentId, action, values: actionValues });
    agents.push({
      agentId: row.agentId,
      totalRuns: row.totalRuns,
      succeeded: row.succeeded,
      failed: row.failed,
      cancelled: row.cancelled,
      successRate: row.successRate,
      errorRate: row.errorRate,
      p50DurationMs: percentile(values, 50),
      p95DurationMs: percentile(values, 95),
      durationSamples: values.length,
    });
  }
  const slowestActions = byAction
    .map(({ agentId, action, values }) => ({
      agentId,
      action,
      p95DurationMs: percentile(values, 95)!,
      samples: values.length,
    }))
    .sort(
      (a, b) =>
        b.p95DurationMs - a.p95DurationMs ||
        a.agentId.localeCompare(b.agentId) ||
        a.action.localeCompare(b.action),
    )
    .slice(0, SLOWEST_ACTIONS);
  return { from: input.from ?? null, to: input.to ?? null, agents, slowestActions };
}
