import { defineAction, type ActionMap } from '../actions.js';
import {
  analyzeMetricsInput,
  analyzeMetricsOutput,
  computeMetricsReport,
  type MetricsReads,
} from '../skills/analyze-metrics.js';

/** analyst's actions read the runtime's metrics, so the runtime builds them with its reads. */
export const analystActions = (reads: MetricsReads): ActionMap => ({
  analyze_metrics: defineAction({
    description:
      "Reports on the runtime's own task history (all agents, or `agentIds`, over [from, to)): volumes, success and " +
      'error rates, p50/p95 durations, slowest actions. Deterministic; a model-written `summary` only when a ' +
      'provider is configured.',
    input: analyzeMetricsInput,
    output: analyzeMetricsOutput,
    run: async (input, ctx) => {
      // A step: the numbers of one task stay the same when it is replayed.
      const report = await ctx.step('compute report', () => computeMetricsReport(reads, input));
      const summary = ctx.model
        ? await ctx.model.generateText({
            name: 'summary',
            system:
              'You are a data analyst. Summarise operational metrics in a few sentences for an operator.',
            prompt: JSON.stringify(report),
          })
        : null;
      return { ...report, summary };
    },
  }),
});
