/**
 * GraphQL observability as yoga plugins: Prometheus metrics of operations and HTTP requests with
 * bounded labels, the active-subscription gauge, and, with tracing on, a span per operation
 * (tracing.ts).
 *
 * The operation metrics keep the names and labels of @graphql-yoga/plugin-prometheus (dashboards
 * built for it work), but are recorded by the plugin below: that package re-derived and filtered
 * its label objects in every phase of every request, which cost a third of the requests/s of
 * `{ health { ok } }` (`npm run bench -- --only=http`). Here each request reads its operation once
 * and counts through prom-client children cached per label set.
 */
import { getOperationAST, type DocumentNode, type GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { Counter, Histogram, type Registry } from 'prom-client';
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
/** Introspection is GraphiQL's and codegen's business, not traffic: not counted. */
const INTROSPECTION = /\b__(schema|type)\b/;

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

/** A metric's child per label set, made once: prom-client hashes a label object on every call. */
function childrenOf<Child>(labels: (values: string[]) => Child): (...values: string[]) => Child {
  const children = new Map<string, Child>();
  return (...values) => {
    const key = values.join('\u0000');
    let child = children.get(key);
    if (!child) children.set(key, (child = labels(values)));
    return child;
  };
}

/** The labels every operation metric carries, read once per request. */
interface Operation {
  name: string;
  type: string;
}

function operationMetrics(registry: Registry) {
  const counter = (name: string, help: string, labelNames: string[]) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  const histogram = (name: string, help: string, labelNames: string[]) =>
    new Histogram({ name, help, labelNames, buckets: OPERATION_DURATION_BUCKETS, registers: [registry] });
  const requests = counter(
    'graphql_envelop_request',
    'GraphQL operations executed (queries, mutations, subscriptions), by name and type.',
    ['operationName', 'operationType'],
  );
  const durations = histogram(
    'graphql_envelop_request_duration',
    'Time to execute GraphQL operations (seconds), by name and type.',
    ['operationName', 'operationType'],
  );
  const errors = counter(
    'graphql_envelop_error_result',
    'GraphQL errors returned, by operation, phase (parse, validate, context, execute, subscribe) and extensions.code.',
    ['operationName', 'operationType', 'phase', 'code'],
  );
  const http = histogram(
    'graphql_yoga_http_duration',
    'Time to answer GraphQL HTTP requests (seconds), by operation, method and status code.',
    ['operationName', 'operationType', 'method', 'statusCode'],
  );
  const requestsOf = childrenOf((values) => requests.labels(...values));
  const durationsOf = childrenOf((values) => durations.labels(...values));
  const errorsOf = childrenOf((values) => errors.labels(...values));
  const httpOf = childrenOf((values) => http.labels(...values));
  return {
    executed(operation: Operation, seconds: number) {
      requestsOf(operation.name, operation.type).inc();
      durationsOf(operation.name, operation.type).observe(seconds);
    },
    failed(operation: Operation, phase: string, code: string) {
      errorsOf(operation.name, operation.type, phase, code).inc();
    },
    answered(operation: Operation, method: string, status: number, seconds: number) {
      httpOf(operation.name, operation.type, method, String(status)).observe(seconds);
    },
  };
}

const UNPARSED: Operation = { name: 'anonymous', type: 'unknown' };
const elapsedSeconds = (since: number) => (performance.now() - since) / 1000;
const isAsyncIterable = (value: unknown): boolean => Symbol.asyncIterator in Object(value);

/**
 * Counts operations (at the end of execution, or of a subscription's stream), their errors by phase
 * and code, and the HTTP time of requests whose document parsed.
 */
function useOperationMetrics(metrics: CasMetrics): Plugin {
  const record = operationMetrics(metrics.registry);
  const operationName = boundedOperationNames();
  const operations = new WeakMap<object, Operation>();
  /** HTTP requests: when each arrived, and its operation once parsed. */
  const requestStarts = new WeakMap<Request, number>();
  const requestOperations = new WeakMap<Request, Operation>();
  const operationOf = (context: object) => operations.get(context) ?? UNPARSED;
  const countErrors = (operation: Operation, phase: string, list: readonly GraphQLError[] | undefined) => {
    for (const error of list ?? []) record.failed(operation, phase, errorCode(error, phase));
  };
  // Executions and subscriptions end alike: a single result, or a stream's results then its end.
  const timed = (context: object) => {
    const operation = operationOf(context);
    const start = performance.now();
    const onResult = ({ result }: { result: { errors?: readonly GraphQLError[] } }) =>
      countErrors(operation, 'execute', result.errors);
    const onEnd = () => record.executed(operation, elapsedSeconds(start));
    return (result: unknown) => {
      if (isAsyncIterable(result)) return { onNext: onResult, onEnd };
      onResult({ result: result as { errors?: readonly GraphQLError[] } });
      onEnd();
      return undefined;
    };
  };
  return {
    onPluginInit({ registerContextErrorHandler }) {
      registerContextErrorHandler(({ context, error }) =>
        countErrors(operationOf(context), 'context', [error as GraphQLError]),
      );
    },
    onRequest({ request }) {
      requestStarts.set(request, performance.now());
    },
    onParse({ context, params }) {
      if (typeof params.source === 'string' && INTROSPECTION.test(params.source)) return;
      return ({ result }) => {
        if (result instanceof Error) {
          countErrors(UNPARSED, 'parse', [result as GraphQLError]);
          return;
        }
        const { params: requested, request } = context as {
          params?: { operationName?: string };
          request?: Request;
        };
        const definition = getOperationAST(result as DocumentNode, requested?.operationName);
        const operation = {
          name: operationName(definition?.name?.value),
          type: definition?.operation ?? 'unknown',
        };
        operations.set(context, operation);
        if (request) requestOperations.set(request, operation);
      };
    },
    onValidate({ context }) {
      const operation = operations.get(context);
      if (!operation) return;
      return ({ valid }) => {
        if (!valid) record.failed(operation, 'validate', PHASE_CODES.validate!);
      };
    },
    onExecute({ args }) {
      if (!operations.has(args.contextValue)) return;
      const done = timed(args.contextValue);
      return { onExecuteDone: ({ result }) => done(result) };
    },
    onSubscribe({ args }) {
      if (!operations.has(args.contextValue)) return;
      const done = timed(args.contextValue);
      return {
        onSubscribeResult: ({ result }) => done(result),
        onSubscribeError: ({ error }) =>
          countErrors(operationOf(args.contextValue), 'subscribe', [error as GraphQLError]),
      };
    },
    onResponse({ request, response }) {
      const start = requestStarts.get(request);
      const operation = requestOperations.get(request);
      if (start === undefined || !operation) return;
      record.answered(operation, request.method, response.status, elapsedSeconds(start));
    },
  };
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

/**
 * cas_graphql_subscriptions_active: up when a subscription's stream starts, down when it ends. A
 * stream shared by several graphql-ws subscribers is counted per subscriber where it is shared
 * (src/server/shared-subscriptions.ts), not here.
 */
function useSubscriptionGauge(metrics: CasMetrics): Plugin {
  return {
    onSubscribe: ({ args }) => {
      if ((args.contextValue as { sharedSubscription?: boolean }).sharedSubscription) return;
      return {
        onSubscribeResult: ({ result }) => {
          if (!(Symbol.asyncIterator in Object(result))) return;
          metrics.subscriptionStarted();
          return { onEnd: () => metrics.subscriptionEnded() };
        },
      };
    },
  };
}

export function observabilityPlugins(metrics: CasMetrics): Plugin[] {
  const plugins: Plugin[] = [useOperationMetrics(metrics), useSubscriptionGauge(metrics)];
  return [...plugins, ...operationTracingPlugins()];
}
