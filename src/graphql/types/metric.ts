/** Metrics: runs, outcomes, durations and uptime of an agent, computed by the database. */
import {
  DEFAULT_METRIC_BUCKETS,
  MAX_METRIC_BUCKETS,
  type AgentMetrics,
  type MetricBucket,
} from '../../domains/metric/metric.js';
import { badInput, notFound } from '../../errors.js';
import { builder } from '../builder.js';
import { preloadExtension } from '../preload.js';
import { AgentRef, parseAgentId } from './agent.js';

const AgentMetricsRef = builder.objectRef<AgentMetrics>('AgentMetrics').implement({
  description: 'Tasks of one agent that reached a final status in a time range.',
  fields: (t) => ({
    totalRuns: t.exposeInt('totalRuns'),
    succeeded: t.exposeInt('succeeded'),
    failed: t.exposeInt('failed'),
    cancelled: t.exposeInt('cancelled'),
    avgDurationMs: t.exposeFloat('avgDurationMs', { nullable: true }),
    successRate: t.exposeFloat('successRate', { description: 'succeeded / totalRuns; 0 without runs.' }),
    errorRate: t.exposeFloat('errorRate', { description: 'failed / totalRuns; 0 without runs.' }),
    uptimeSeconds: t.exposeFloat('uptimeSeconds', { description: 'Since the agent became available.' }),
  }),
});

builder.objectField(AgentRef, 'metrics', (t) =>
  t.field({
    type: AgentMetricsRef,
    description: 'Over [from, to] (both optional: open-ended).',
    args: {
      from: t.arg({ type: 'DateTime', required: false }),
      to: t.arg({ type: 'DateTime', required: false }),
    },
    // Query.agents loads every agent's metrics at once (preload.ts); `now` takes them from there.
    extensions: preloadExtension((args, loaders) => {
      const { from, to } = args as { from?: Date | null; to?: Date | null };
      return from && to && from > to ? null : loaders.metrics({ from, to });
    }),
    resolve: (agent, { from, to }, { loaders }) => {
      if (from && to && from > to) throw badInput('"from" must not be later than "to"');
      const found = (metrics: AgentMetrics | null) => {
        if (!metrics) throw notFound('agent', agent.id);
        return metrics;
      };
      const metrics = loaders.now(loaders.metrics({ from, to }), agent.id);
      return metrics instanceof Promise ? metrics.then(found) : found(metrics);
    },
  }),
);

const MetricBucketRef = builder.objectRef<MetricBucket>('MetricBucket').implement({
  description: "One time bucket of an agent's metric: how many points fell in it and their distribution.",
  fields: (t) => ({
    start: t.expose('start', {
      type: 'DateTime',
      description: 'Start of the bucket (aligned to the epoch).',
    }),
    count: t.exposeInt('count', {
      description: 'Points in the bucket (at least 1: empty buckets are left out).',
    }),
    avg: t.exposeFloat('avg'),
    p50: t.exposeFloat('p50', { description: 'Median (interpolated).' }),
    p95: t.exposeFloat('p95', { description: '95th percentile (interpolated).' }),
    max: t.exposeFloat('max'),
  }),
});

builder.queryField('metricSeries', (t) =>
  t.field({
    type: [MetricBucketRef],
    description:
      'A metric of one agent (e.g. task_duration_ms, llm_prompt_tokens, llm_completion_tokens) in time buckets over [from, to), oldest first, computed by the database. Empty buckets are left out.',
    args: {
      agentId: t.arg.id({ required: true }),
      name: t.arg.string({ required: true, description: 'The metric name.' }),
      from: t.arg({ type: 'DateTime', required: false, description: 'Default: an hour before `to`.' }),
      to: t.arg({ type: 'DateTime', required: false, description: 'Default: now.' }),
      bucket: t.arg.int({
        required: false,
        description: `Bucket width in seconds (1-86400). Default: the range in ${DEFAULT_METRIC_BUCKETS} buckets. At most ${MAX_METRIC_BUCKETS} buckets.`,
      }),
    },
    authScopes: { viewer: true },
    resolve: (_root, args, { runtime }) =>
      runtime.getMetricBuckets({
        agentId: parseAgentId(args.agentId, 'agentId'),
        name: args.name,
        from: args.from ?? null,
        to: args.to ?? null,
        bucketSeconds: args.bucket ?? null,
      }),
  }),
);
