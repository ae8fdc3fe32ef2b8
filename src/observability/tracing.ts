/**
 * OpenTelemetry traces. The code uses only @opentelemetry/api (a no-op until an SDK registers);
 * `startTracing` registers the Node SDK with the exporters the standard OTEL_* variables name, and
 * nothing starts when they are unset (src/config.ts, tracingConfig).
 *
 * A task carries the W3C traceparent of the request that queued it (cas_tasks.trace_parent), so the
 * span of each attempt, in whichever worker process claims it, is a child of that request's span.
 */
import {
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-node';
import type { Plugin } from 'graphql-yoga';
import type { TracingConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { VERSION } from '../version.js';

const TRACER_NAME = 'cas-runtime-api';

/** Set once the SDK is registered: until then `inSpan` adds nothing, not even a no-op span. */
let enabled = false;
/** What `inSpan` hands `work` while tracing is off. */
const NO_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** The tracer of this service's own spans (task attempts, steps, database calls). */
export const tracer = () => trace.getTracer(TRACER_NAME, VERSION);

export interface Tracing {
  /** Exports the spans still buffered and stops the SDK; idempotent. */
  shutdown(): Promise<void>;
}

/** The GraphQL operation-span plugins, loaded with the SDK (none while tracing is off). */
let operationTracing: (() => Plugin[]) | null = null;

async function exporterFor(name: 'otlp' | 'console', config: TracingConfig): Promise<SpanExporter> {
  if (name === 'console') return new (await import('@opentelemetry/sdk-trace-node')).ConsoleSpanExporter();
  // Endpoint, headers and timeout come from the standard OTEL_EXPORTER_OTLP_* variables.
  const { OTLPTraceExporter } =
    config.protocol === 'http/json'
      ? await import('@opentelemetry/exporter-trace-otlp-http')
      : await import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter();
}

/**
 * Registers the OpenTelemetry SDK globally (tracer provider, AsyncLocalStorage context, W3C trace
 * context propagation). Null config: nothing is even loaded, and `inSpan` adds nothing.
 */
export async function startTracing(config: TracingConfig | null, logger: Logger): Promise<Tracing | null> {
  if (!config) return null;
  const [{ BatchSpanProcessor, NodeTracerProvider }, resources, envelop] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
    import('@envelop/opentelemetry'),
  ]);
  const resource = resources
    .resourceFromAttributes({ 'service.name': config.serviceName, 'service.version': VERSION })
    // OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, host and process: theirs win over ours.
    .merge(
      resources.detectResources({
        detectors: [resources.hostDetector, resources.processDetector, resources.envDetector],
      }),
    );
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: await Promise.all(
      config.exporters.map(async (name) => new BatchSpanProcessor(await exporterFor(name, config))),
    ),
  });
  provider.register();
  enabled = true;
  operationTracing = () => [
    // An HTTP caller's traceparent/tracestate headers become the parent of the operation's span.
    {
      onExecute({ args }) {
        const headers = (args.contextValue as { request?: Request }).request?.headers;
        const traceparent = headers?.get('traceparent');
        if (!traceparent) return;
        const carrier = { traceparent, tracestate: headers?.get('tracestate') ?? '' };
        envelop.setCurrentOtelContext(args.contextValue, propagation.extract(context.active(), carrier));
      },
    },
    // Operation spans only: no per-resolver spans, no variables or results (they may hold
    // secrets); the document is recorded unless it has inline arguments.
    envelop.useOpenTelemetry(
      { resolvers: false, variables: false, result: false },
      trace.getTracerProvider(),
    ) as Plugin,
  ];
  logger.info(
    { exporters: config.exporters, protocol: config.protocol, service: config.serviceName },
    'OpenTelemetry tracing on',
  );
  let stopped: Promise<void> | null = null;
  return {
    shutdown: () =>
      (stopped ??= provider
        .shutdown()
        .catch((error: unknown) => logger.warn({ err: error }, 'flushing traces failed'))),
  };
}

/** yoga plugins making a span per GraphQL operation; none while tracing is off. */
export const operationTracingPlugins = (): Plugin[] => operationTracing?.() ?? [];

/** The W3C traceparent of `ctx` (the active context by default); null when tracing is off. */
export function currentTraceParent(ctx: Context = context.active()): string | null {
  if (!trace.getSpanContext(ctx)) return null;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent ?? null;
}

/** The context a stored traceparent continues (the root context when there is none). */
export function contextOfTraceParent(traceParent: string | null | undefined): Context {
  return traceParent ? propagation.extract(ROOT_CONTEXT, { traceparent: traceParent }) : ROOT_CONTEXT;
}

/** The trace id of the active span, for log lines; undefined when tracing is off. */
export function activeTraceId(ctx: Context = context.active()): string | undefined {
  return trace.getSpanContext(ctx)?.traceId;
}

/**
 * Runs `work` inside a new span (a child of `parent`, the active context by default), ending it
 * when `work` settles; a throw marks the span as an error and is rethrown.
 */
export async function inSpan<T>(
  name: string,
  options: { attributes?: Attributes; kind?: SpanKind; parent?: Context },
  work: (span: Span) => Promise<T>,
): Promise<T> {
  if (!enabled) return work(NO_SPAN);
  const parent = options.parent ?? context.active();
  return tracer().startActiveSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes },
    parent,
    async (span) => {
      try {
        return await work(span);
      } catch (error) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: error instanceof Error ? error.message : undefined,
        });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

export { SpanKind, SpanStatusCode };
