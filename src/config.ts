import { closest, distance } from 'fastest-levenshtein';
import { z } from 'zod';

/**
 * Every environment variable the service reads, validated once at start. Each one is also in
 * .env.example and docs/configuration.md (test/config-docs.test.ts checks that all three agree).
 */
/** Runtime implementations CAS_RUNTIME may select. */
export const RUNTIMES = ['custom', 'langgraph'] as const;
/** Where change notices come from: Postgres LISTEN, Supabase Realtime, or chosen by the mode. */
export const FEEDS = ['auto', 'listen', 'realtime'] as const;
/** CAS_AUTH: auto verifies JWTs when a key source is configured; local treats callers as the local admin. */
export const AUTH_MODES = ['auto', 'local'] as const;
/** Where Supabase serves a project's JWT signing keys, relative to SUPABASE_URL. */
export const SUPABASE_JWKS_PATH = '/auth/v1/.well-known/jwks.json';
/** CAS_TRUSTED_DOCUMENTS: which GraphQL documents the API runs (see docs/security.md). */
export const TRUSTED_DOCUMENTS_MODES = ['off', 'allow', 'only'] as const;
export type TrustedDocumentsMode = (typeof TRUSTED_DOCUMENTS_MODES)[number];

/** CAS_LOG_FORMAT: auto is pretty, human-readable lines on a terminal and JSON otherwise. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
/** OTEL_TRACES_EXPORTER values this service can start (the OpenTelemetry names). */
export const TRACE_EXPORTERS = ['otlp', 'console', 'none'] as const;
/** OTLP transports over HTTP (gRPC is not bundled: collectors serve both on 4317/4318). */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
/** The OTLP protocol OpenTelemetry specifies as the default. */
const DEFAULT_OTLP_PROTOCOL = 'http/protobuf';

/** Where agent files are looked for when CAS_AGENTS_DIR is unset, relative to the working directory. */
export const DEFAULT_AGENTS_DIR = 'agents';
/** Where workflow files are looked for when CAS_WORKFLOWS_DIR is unset. */
export const DEFAULT_WORKFLOWS_DIR = 'workflows';

/** A comma-separated list, blanks dropped. */
const commaList = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);
/** A browser origin as sent in the Origin header: scheme, host and port, nothing else. */
const origin = z.string().refine((value) => {
  try {
    return new URL(value).origin === value;
  } catch {
    return false;
  }
}, 'each origin is scheme://host[:port] with no path or trailing slash, e.g. https://app.example.com');
const booleanFlag = z
  .enum(['true', 'false'], { error: 'must be true or false' })
  .transform((v) => v === 'true');
const otlpProtocol = z.enum(OTLP_PROTOCOLS, {
  error: `must be one of: ${OTLP_PROTOCOLS.join(', ')} (grpc is not supported: point it at the collector's HTTP port, 4318)`,
});
const quota = (max: number) => z.coerce.number().int().min(0).max(max);

const environmentSchema = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(4000),
    // Local only unless HOST says otherwise: see docs/security.md.
    HOST: z.string().min(1).default('127.0.0.1'),
    NODE_ENV: z.string().optional(),
    CAS_DATA_DIR: z.string().min(1).default('.cas/data'),
    CAS_AGENTS_DIR: z.string().min(1).optional(),
    CAS_WORKFLOWS_DIR: z.string().min(1).optional(),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    CAS_PREPARED_STATEMENTS: booleanFlag.default(true),
    SUPABASE_URL: z.url({ protocol: /^https?$/ }).optional(),
    NEXT_PUBLIC_SUPABASE_URL: z.url({ protocol: /^https?$/ }).optional(),
    SUPABASE_SERVICE_ROLE_KEY: z.string().min(20, 'looks too short to be a service role key').optional(),
    SUPABASE_JWT_SECRET: z
      .string()
      .min(32, "must be the project's JWT secret (32 characters or more)")
      .optional(),
    CAS_JWKS_URL: z.url({ protocol: /^https?$/ }).optional(),
    CAS_JWT_AUDIENCE: z.string().min(1).default('authenticated'),
    CAS_JWT_ISSUER: z.string().min(1).optional(),
    CAS_AUTH: z.enum(AUTH_MODES, { error: `must be one of: ${AUTH_MODES.join(', ')}` }).default('auto'),
    CAS_FEED: z.enum(FEEDS, { error: `must be one of: ${FEEDS.join(', ')}` }).default('auto'),
    CAS_RUNTIME: z.enum(RUNTIMES, { error: `must be one of: ${RUNTIMES.join(', ')}` }).default('custom'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    CAS_WORKERS: z.coerce.number().int().min(0).max(64).default(1),
    CAS_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(10),
    CAS_TASK_LEASE_MS: z.coerce.number().int().min(500).max(3_600_000).default(30_000),
    CAS_WORKER_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
    CAS_ABORT_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(5000),
    CAS_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
    CAS_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
    CAS_MAX_RUNNING_PER_CALLER: z.coerce.number().int().min(0).max(1_000_000).default(0),
    CAS_WAIT_TIMEOUT_MS: z.coerce.number().int().min(1).max(86_400_000).default(60_000),
    CAS_MAX_CALL_DEPTH: z.coerce.number().int().min(1).max(100).default(10),
    CAS_CORS_ORIGINS: commaList.pipe(z.array(origin)).default([]),
    CAS_TRUSTED_DOCUMENTS: z
      .enum(TRUSTED_DOCUMENTS_MODES, { error: `must be one of: ${TRUSTED_DOCUMENTS_MODES.join(', ')}` })
      .default('off'),
    CAS_TRUSTED_DOCUMENTS_FILE: commaList.default([
      'examples/gql/persisted-documents.json',
      'web/src/gql/persisted-documents.json',
    ]),
    CAS_GRAPHIQL: booleanFlag.optional(),
    CAS_DASHBOARD: booleanFlag.default(true),
    CAS_MAX_SUBSCRIPTIONS_PER_SOCKET: quota(100_000).default(100),
    CAS_MAX_SOCKETS_PER_CALLER: quota(100_000).default(20),
    CAS_MAX_SSE_STREAMS_PER_CALLER: quota(100_000).default(20),
    CAS_MAX_RESPONSE_BYTES: quota(1_000_000_000).default(5_000_000),
    CAS_MUTATION_RATE_LIMIT: quota(1_000_000).default(60),
    CAS_LOG_FORMAT: z
      .enum(LOG_FORMATS, { error: `must be one of: ${LOG_FORMATS.join(', ')}` })
      .default('auto'),
    CAS_METRICS_TOKEN: z.string().min(16, 'must be 16 characters or more (a random secret)').optional(),
    CAS_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
    OTEL_SDK_DISABLED: booleanFlag.default(false),
    OTEL_TRACES_EXPORTER: commaList
      .pipe(z.array(z.enum(TRACE_EXPORTERS, { error: `each must be one of: ${TRACE_EXPORTERS.join(', ')}` })))
      .optional(),
    OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
    OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol.optional(),
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol.optional(),
    OTEL_SERVICE_NAME: z.string().min(1).optional(),
    CAS_LLM_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
    CAS_LLM_API_KEY: z.string().min(1).optional(),
    CAS_LLM_MODEL: z.string().min(1).max(200).optional(),
    CAS_LLM_AGENT_MODELS: z
      .string()
      .transform((value, context) => {
        try {
          return JSON.parse(value) as unknown;
        } catch {
          context.addIssue({
            code: 'custom',
            message: 'must be a JSON object, e.g. {"developer":"gpt-4.1"}',
          });
          return z.NEVER;
        }
      })
      .pipe(
        z.record(
          z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'keys are agent ids'),
          z.string().min(1).max(200),
        ),
      )
      .default({}),
    CAS_LLM_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(120_000),
    CAS_LLM_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  })
  .transform((env) => ({ ...env, SUPABASE_URL: env.SUPABASE_URL ?? env.NEXT_PUBLIC_SUPABASE_URL }));

/** Read by the test suite only (test/support), never by the service. */
export const TEST_ONLY_VARIABLES = ['CAS_TEST_DATABASE_URL', 'CAS_TEST_SUPABASE_DB_URL'] as const;

/** Every variable name this project reads: the service's settings, then the test suite's. */
export const KNOWN_VARIABLES: readonly string[] = [
  ...Object.keys(environmentSchema.in.shape),
  ...TEST_ONLY_VARIABLES,
];

export type DatabaseMode = 'embedded' | 'postgres' | 'supabase';

/** How callers are authenticated (docs/security.md). API keys work in both modes. */
export interface AuthConfig {
  /**
   * 'jwt': Supabase Auth JWTs are verified, callers without credentials are anonymous.
   * 'local': no JWT is accepted and callers without an API key are the local admin (development).
   */
  mode: 'jwt' | 'local';
  /** SUPABASE_JWT_SECRET: verifies HS256 tokens. */
  jwtSecret?: string;
  /** CAS_JWKS_URL, else SUPABASE_URL + SUPABASE_JWKS_PATH: verifies asymmetric (ES256, RS256) tokens. */
  jwksUrl?: string;
  /** CAS_JWT_AUDIENCE: the `aud` a token must carry. */
  audience: string;
  /** CAS_JWT_ISSUER: the `iss` a token must carry; unchecked when unset. */
  issuer?: string;
}

/**
 * The OpenAI-compatible chat provider model-backed actions use (src/agents/model/). Configured when
 * CAS_LLM_BASE_URL and CAS_LLM_MODEL are set; the key is optional (Ollama, vLLM need none).
 */
export interface LlmConfig {
  baseUrl: string;
  apiKey?: string;
  /** The default model. */
  model: string;
  /** CAS_LLM_AGENT_MODELS: a model per agent id, overriding `model`. */
  agentModels: Record<string, string>;
  /** Per request (one attempt of one model call). */
  timeoutMs: number;
  /** Retries of a 429, 5xx or cut connection, with backoff honouring Retry-After. */
  maxRetries: number;
}

/** The model an agent's calls use. */
export const modelFor = (llm: LlmConfig, agentId: string): string => llm.agentModels[agentId] ?? llm.model;

/** The message of PROVIDER_NOT_CONFIGURED, naming the variables. */
export const PROVIDER_NOT_CONFIGURED_MESSAGE =
  'no model provider is configured: set CAS_LLM_BASE_URL and CAS_LLM_MODEL (and CAS_LLM_API_KEY if the provider needs one); see docs/agents.md';

export interface Config {
  /** The model provider; null when not configured (model-backed actions are refused at enqueue). */
  llm: LlmConfig | null;
  port: number;
  host: string;
  dataDir: string;
  /**
   * CAS_AGENTS_DIR: the folder of agent files (src/agents/loader.ts), relative to the working
   * directory. `explicit`: set by the environment, so a missing folder is an error; the default
   * folder may be absent (no agents in code).
   */
  agentsDir: { path: string; explicit: boolean };
  /** CAS_WORKFLOWS_DIR: the folder of workflow files (defineWorkflow), as agentsDir. */
  workflowsDir: { path: string; explicit: boolean };
  databaseUrl?: string;
  /**
   * CAS_PREPARED_STATEMENTS: the connections to DATABASE_URL keep the SQL-function calls prepared
   * (off behind a transaction pooler that does not carry them, see docs/operations.md).
   */
  preparedStatements: boolean;
  supabase?: { url: string; serviceRoleKey: string };
  mode: DatabaseMode;
  auth: AuthConfig;
  /**
   * CAS_FEED. auto: Supabase Realtime when Supabase is configured (with DATABASE_URL too, only if
   * that database broadcasts, see docs/supabase.md), else LISTEN.
   */
  feed: (typeof FEEDS)[number];
  runtime: (typeof RUNTIMES)[number];
  logLevel: string;
  /** CAS_LOG_FORMAT: 'auto' pretty-prints on a terminal and writes JSON lines otherwise. */
  logFormat: (typeof LOG_FORMATS)[number];
  /**
   * GET /metrics (Prometheus). `token`: the bearer token a scraper presents; without one, only
   * local callers (loopback, not forwarded by a proxy) may scrape. `port`: where `npm run worker`
   * serves it (API processes serve it on their own port).
   */
  metrics: { token?: string; port?: number };
  /** Null when no OTEL_* variable turns tracing on (no SDK, no exporter, no overhead). */
  tracing: TracingConfig | null;
  /** In-process worker loops; 0 for an API-only process. */
  workers: number;
  workerConcurrency: number;
  taskLeaseMs: number;
  workerPollMs: number;
  /** How long a cancelled or timed-out handler may run on before it is abandoned. */
  abortGraceMs: number;
  /** How long shutdown waits for running tasks before handing them back to the queue. */
  shutdownTimeoutMs: number;
  /**
   * Days finished tasks, events, logs and metric points are kept; older ones are deleted by the
   * workers (src/runtime/retention.ts). 0 keeps everything.
   */
  retentionDays: number;
  /**
   * Most tasks of one caller (the task's user id; tasks without one are one anonymous caller)
   * running at once, counted over every worker and enforced by this process's claims; null for no
   * limit (CAS_MAX_RUNNING_PER_CALLER=0).
   */
  maxRunningPerCaller: number | null;
  /**
   * Longest `executeTask(wait: true)` holds a request; then it answers with the task as it is
   * (still QUEUED or RUNNING). Independent of the task's own timeoutMs.
   */
  waitTimeoutMs: number;
  /** Deepest chain of ctx.call: a task queued by a client is depth 0. */
  maxCallDepth: number;
  /** CAS_CORS_ORIGINS: browser origins other than the API's own that may call it (HTTP and WebSocket). */
  corsOrigins: string[];
  /** CAS_TRUSTED_DOCUMENTS and the persisted-documents manifests (CAS_TRUSTED_DOCUMENTS_FILE). */
  trustedDocuments: { mode: TrustedDocumentsMode; files: string[] };
  /** GraphiQL and introspection: on unless NODE_ENV=production, where CAS_GRAPHIQL=true turns them on. */
  graphiql: boolean;
  /** CAS_DASHBOARD: `npm start` serves the dashboard at / (building it first when stale). */
  dashboard: boolean;
  /** Per-caller and per-socket quotas (0 = no limit); see src/server/limits.ts. */
  quotas: {
    maxSubscriptionsPerSocket: number;
    maxSocketsPerCaller: number;
    maxSseStreamsPerCaller: number;
    maxResponseBytes: number;
    mutationsPerMinute: number;
  };
}

/** OpenTelemetry tracing (src/observability/tracing.ts): on only when an exporter is configured. */
export interface TracingConfig {
  exporters: ('otlp' | 'console')[];
  /** OTLP over HTTP: protobuf (the OpenTelemetry default) or JSON. */
  protocol: (typeof OTLP_PROTOCOLS)[number];
  serviceName: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Reads the configuration; throws a ConfigError that lists every invalid variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const blankAsUnset = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = environmentSchema.safeParse(blankAsUnset);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
  }
  const e = parsed.data;
  if (Boolean(e.SUPABASE_URL) !== Boolean(e.SUPABASE_SERVICE_ROLE_KEY)) {
    throw new ConfigError(
      'invalid configuration:\n  SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY must be set together',
    );
  }
  if (e.CAS_FEED === 'realtime' && !e.SUPABASE_URL) {
    throw new ConfigError(
      'invalid configuration:\n  CAS_FEED=realtime needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY',
    );
  }
  if (e.CAS_FEED === 'listen' && e.SUPABASE_URL && !e.DATABASE_URL) {
    throw new ConfigError(
      'invalid configuration:\n  CAS_FEED=listen needs DATABASE_URL (Supabase mode reaches the database over HTTP only)',
    );
  }
  if (
    Boolean(e.CAS_LLM_BASE_URL) !== Boolean(e.CAS_LLM_MODEL) ||
    (e.CAS_LLM_API_KEY && !e.CAS_LLM_BASE_URL)
  ) {
    throw new ConfigError(
      'invalid configuration:\n  CAS_LLM_BASE_URL and CAS_LLM_MODEL must be set together (CAS_LLM_API_KEY needs them)',
    );
  }
  const auth = authConfig(e);
  if (auth.mode === 'local' && e.NODE_ENV === 'production') {
    throw new ConfigError(
      'NODE_ENV=production needs authentication: set SUPABASE_JWT_SECRET, SUPABASE_URL or CAS_JWKS_URL (docs/security.md)',
    );
  }
  const supabase =
    e.SUPABASE_URL && e.SUPABASE_SERVICE_ROLE_KEY
      ? { url: e.SUPABASE_URL, serviceRoleKey: e.SUPABASE_SERVICE_ROLE_KEY }
      : undefined;
  return {
    llm:
      e.CAS_LLM_BASE_URL && e.CAS_LLM_MODEL
        ? {
            baseUrl: e.CAS_LLM_BASE_URL,
            apiKey: e.CAS_LLM_API_KEY,
            model: e.CAS_LLM_MODEL,
            agentModels: e.CAS_LLM_AGENT_MODELS,
            timeoutMs: e.CAS_LLM_TIMEOUT_MS,
            maxRetries: e.CAS_LLM_MAX_RETRIES,
          }
        : null,
    port: e.PORT,
    host: e.HOST,
    dataDir: e.CAS_DATA_DIR,
    agentsDir: { path: e.CAS_AGENTS_DIR ?? DEFAULT_AGENTS_DIR, explicit: e.CAS_AGENTS_DIR !== undefined },
    workflowsDir: {
      path: e.CAS_WORKFLOWS_DIR ?? DEFAULT_WORKFLOWS_DIR,
      explicit: e.CAS_WORKFLOWS_DIR !== undefined,
    },
    databaseUrl: e.DATABASE_URL,
    preparedStatements: e.CAS_PREPARED_STATEMENTS,
    supabase,
    // A direct connection wins for data when both are set: it is faster and transactional.
    mode: e.DATABASE_URL ? 'postgres' : supabase ? 'supabase' : 'embedded',
    auth,
    feed: e.CAS_FEED,
    runtime: e.CAS_RUNTIME,
    logLevel: e.LOG_LEVEL,
    logFormat: e.CAS_LOG_FORMAT,
    metrics: { token: e.CAS_METRICS_TOKEN, port: e.CAS_METRICS_PORT },
    tracing: tracingConfig(e),
    workers: e.CAS_WORKERS,
    workerConcurrency: e.CAS_WORKER_CONCURRENCY,
    taskLeaseMs: e.CAS_TASK_LEASE_MS,
    workerPollMs: e.CAS_WORKER_POLL_MS,
    abortGraceMs: e.CAS_ABORT_GRACE_MS,
    shutdownTimeoutMs: e.CAS_SHUTDOWN_TIMEOUT_MS,
    retentionDays: e.CAS_RETENTION_DAYS,
    maxRunningPerCaller: e.CAS_MAX_RUNNING_PER_CALLER === 0 ? null : e.CAS_MAX_RUNNING_PER_CALLER,
    waitTimeoutMs: e.CAS_WAIT_TIMEOUT_MS,
    maxCallDepth: e.CAS_MAX_CALL_DEPTH,
    corsOrigins: e.CAS_CORS_ORIGINS,
    trustedDocuments: { mode: e.CAS_TRUSTED_DOCUMENTS, files: e.CAS_TRUSTED_DOCUMENTS_FILE },
    graphiql: e.CAS_GRAPHIQL ?? e.NODE_ENV !== 'production',
    dashboard: e.CAS_DASHBOARD,
    quotas: {
      maxSubscriptionsPerSocket: e.CAS_MAX_SUBSCRIPTIONS_PER_SOCKET,
      maxSocketsPerCaller: e.CAS_MAX_SOCKETS_PER_CALLER,
      maxSseStreamsPerCaller: e.CAS_MAX_SSE_STREAMS_PER_CALLER,
      maxResponseBytes: e.CAS_MAX_RESPONSE_BYTES,
      mutationsPerMinute: e.CAS_MUTATION_RATE_LIMIT,
    },
  };
}

/** A misspelt name within this many edits of a known one gets that name suggested. */
const MAX_SUGGESTION_DISTANCE = 3;

/**
 * One warning for each CAS_* variable in `env` that this project does not read: most likely a
 * typo (CAS_WOKERS), which would otherwise silently leave the default in place.
 */
export function unknownVariableWarnings(env: NodeJS.ProcessEnv = process.env): string[] {
  const known = KNOWN_VARIABLES.filter((name) => name.startsWith('CAS_'));
  return Object.keys(env)
    .filter((name) => name.startsWith('CAS_') && !known.includes(name))
    .sort()
    .map((name) => {
      const nearest = closest(name, known);
      const hint =
        distance(name, nearest) <= MAX_SUGGESTION_DISTANCE ? `did you mean ${nearest}?` : 'see .env.example';
      return `${name} is not a setting of this service and is ignored; ${hint}`;
    });
}

/**
 * Tracing is on when OTEL_TRACES_EXPORTER names an exporter or an OTLP endpoint is set, and
 * OTEL_SDK_DISABLED is not true: unset, no SDK starts.
 */
function tracingConfig(e: z.output<typeof environmentSchema>): TracingConfig | null {
  const endpoint = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? e.OTEL_EXPORTER_OTLP_ENDPOINT;
  const named = e.OTEL_TRACES_EXPORTER ?? (endpoint ? ['otlp' as const] : []);
  const exporters = named.includes('none')
    ? []
    : [...new Set(named.filter((name): name is 'otlp' | 'console' => name !== 'none'))];
  if (e.OTEL_SDK_DISABLED || exporters.length === 0) return null;
  return {
    exporters,
    protocol: e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL ?? DEFAULT_OTLP_PROTOCOL,
    serviceName: e.OTEL_SERVICE_NAME ?? 'cas-runtime-api',
  };
}

function authConfig(e: z.output<typeof environmentSchema>): AuthConfig {
  const jwksUrl =
    e.CAS_JWKS_URL ??
    (e.SUPABASE_URL ? `${e.SUPABASE_URL.replace(/\/+$/, '')}${SUPABASE_JWKS_PATH}` : undefined);
  const verifiesJwts = Boolean(e.SUPABASE_JWT_SECRET || jwksUrl);
  return {
    mode: e.CAS_AUTH === 'auto' && verifiesJwts ? 'jwt' : 'local',
    jwtSecret: e.SUPABASE_JWT_SECRET,
    jwksUrl,
    audience: e.CAS_JWT_AUDIENCE,
    issuer: e.CAS_JWT_ISSUER,
  };
}
