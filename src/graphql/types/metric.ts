/** Metrics: runs, outcomes, durations and uptime of an agent, computed by the database. */
import type { AgentMetrics } from '../../domains/metric/metric.js';
import { badInput, notFound } from '../../errors.js';
import { builder } from '../builder.js';
import { AgentRef } from './agent.js';

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
    resolve: async (agent, { from, to }, { loaders }) => {
      if (from && to && from > to) throw badInput('"from" must not be later than "to"');
      const metrics = await loaders.metrics({ from, to }).load(agent.id);
      if (!metrics) throw notFound('agent', agent.id);
      return metrics;
    },
  }),
);
