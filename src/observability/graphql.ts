/**
 * GraphQL observability as yoga plugins: Prometheus metrics of operations and HTTP requests
 * (@graphql-yoga/plugin-prometheus) with bounded labels, the active-subscription gauge, and, with
 * tracing on, a span per operation (tracing.ts).
 */
import type { Plugin } from 'graphql-yoga';
import { createCounter, createHistogram, usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { isCasError } from '../errors.js';
import type { CasMetrics } from './metrics.js';
import { operationTracingPlugins } from './tracing.js';

/** Distinct operation names kept as label values; later ones are counted as "other". */
export const MAX_OPERATION_NAME_LABELS = 200;
/** What a well-formed GraphQL name looks like, capped so one label value stays small. */
const OPERATION_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,63}$/;
/** Seconds: operations from cached reads (sub-millisecond) to waits for a task (a minute). */
const OPERATION_DURATION_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60,
];

/**
 * Operation names come from callers, so a label of them is bounded: the first
 * MAX_OPERATION_NAME_LABELS well-formed names are kept, anything else is "other".
 */
export function boundedOperationNames(
  limit = MAX_OPERATION_NAME_LABELS,
): (name: string | undefined) => string {
  const seen = new Set<string>();
  return (name) => {
    if (!name) return 'anonymous';
    if (seen.has(name)) return name;
    if (!OPERATION_NAME.test(name) || seen.size >= limit) return 'other';
    seen.add(name);
    return name;
  };
}

function usePrometheusMetrics(metrics: CasMetrics): Plugin {
  const { registry } = metrics;
  const operationName = boundedOperationNames();
  const operationLabels = (params: { operationName?: string; operationType?: string }) => ({
    operationName: operationName(params.operationName),
    operationType: params.operationType ?? 'unknown',
  });
  return usePrometheus({
    registry,
    // Served by app.ts, behind the metrics access rule (metrics-endpoint.ts).
    endpoint: false,
    skipIntrospection: true,
    metrics: {
      graphql_envelop_request: createCounter({
        registry,
        counter: {
          name: 'graphql_envelop_request',
          help: 'GraphQL operations executed (queries, mutations, subscriptions), by name and type.',
          labelNames: ['operationName', 'operationType'],
        },
        fillLabelsFn: operationLabels,
      }),
      graphql_envelop_request_duration: createHistogram({
        registry,
        histogram: {
          name: 'graphql_envelop_request_duration',
          help: 'Time to execute GraphQL operations (seconds), by name and type.',
          labelNames: ['operationName', 'operationType'],
          buckets: OPERATION_DURATION_BUCKETS,
        },
        fillLabelsFn: operationLabels,
      }),
      graphql_envelop_error_result: createCounter({
        registry,
        counter: {
          name: 'graphql_envelop_error_result',
          help: 'GraphQL errors returned, by operation, phase (parse, validate, context, execute, subscribe) and extensions.code.',
          labelNames: ['operationName', 'operationType', 'phase', 'code'],
        },
        fillLabelsFn: (params) => ({
          ...operationLabels(params),
          phase: params.errorPhase ?? 'unknown',
          code: errorCode(params.error, params.errorPhase),
        }),
      }),
      graphql_yoga_http_duration: createHistogram({
        registry,
        histogram: {
          name: 'graphql_yoga_http_duration',
          help: 'Time to answer GraphQL HTTP requests (seconds), by operation, method and status code.',
          labelNames: ['operationName', 'operationType', 'method', 'statusCode'],
          buckets: OPERATION_DURATION_BUCKETS,
        },
        fillLabelsFn: (params, { request, response }) => ({
          ...operationLabels(params),
          method: request.method,
          statusCode: String(response.status),
        }),
      }),
      graphql_envelop_deprecated_field: false,
      graphql_envelop_request_time_summary: false,
      graphql_envelop_phase_parse: false,
      graphql_envelop_phase_validate: false,
      graphql_envelop_phase_context: false,
      graphql_envelop_phase_execute: false,
      graphql_envelop_phase_subscribe: false,
      graphql_envelop_schema_change: false,
      graphql_envelop_execute_resolver: false,
    },
  }) as Plugin;
}

/** Codes of errors raised before execution, which carry none of their own at this point. */
const PHASE_CODES: Record<string, string> = {
  parse: 'GRAPHQL_PARSE_FAILED',
  validate: 'GRAPHQL_VALIDATION_FAILED',
};

/**
 * The code of a GraphQL error (a bounded set: ours and graphql-js's), else "INTERNAL". Seen before
 * the error mapping (src/graphql/errors.ts) runs, so a resolver's CasError is read from the cause.
 */
function errorCode(error: unknown, phase: string | undefined): string {
  const graphqlError = error as { extensions?: { code?: unknown }; originalError?: unknown } | undefined;
  if (isCasError(graphqlError?.originalError)) return graphqlError.originalError.code;
  const code = graphqlError?.extensions?.code;
  if (typeof code === 'string' && /^[A-Z_]{1,40}$/.test(code)) return code;
  return (phase && PHASE_CODES[phase]) ?? 'INTERNAL';
}

/** cas_graphql_subscriptions_active: up when a subscription's stream starts, down when it ends. */
function useSubscriptionGauge(metrics: CasMetrics): Plugin {
  return {
    onSubscribe: () => ({
      onSubscribeResult: ({ result }) => {
        if (!(Symbol.asyncIterator in Object(result))) return;
        metrics.subscriptionStarted();
        return { onEnd: () => metrics.subscriptionEnded() };
      },
    }),
  };
}

export function observabilityPlugins(metrics: CasMetrics): Plugin[] {
  const plugins: Plugin[] = [usePrometheusMetrics(metrics), useSubscriptionGauge(metrics)];
  return [...plugins, ...operationTracingPlugins()];
}
