/**
 * Starts the real server (buildApp on node:http, port 0) over a real runtime on a per-file test
 * database, and speaks HTTP to it. `queries` counts the database round trips the runtime makes
 * (every `query`, `exec` and statement inside a transaction), for the DataLoader test.
 */
import type { LoadedAgent } from '../../src/agents/loader.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import type { AgentRuntime } from '../../src/runtime/agent-runtime.js';
import type { CustomRuntime } from '../../src/runtime/custom-runtime.js';
import { createRuntime } from '../../src/runtime/create-runtime.js';
import { loadDashboard } from '../../src/dashboard/serve.js';
import { buildApp, type App } from '../../src/server/app.js';
import type { ApiLimits } from '../../src/server/limits.js';
import { openTestDatabase, type TestDatabase, type TestDatabaseKind } from '../support/databases.js';
import { FAST_RUNTIME_ENV } from '../support/runtime.js';
import { countingDatabase, type RoundTripCounter } from '../../src/db/counting-database.js';

export interface TestServer {
  /** http://127.0.0.1:<port>/graphql */
  url: string;
  /** http://127.0.0.1:<port> */
  origin: string;
  app: App;
  /** In this process: tests may define actions of their own (`defineActions`). */
  runtime: CustomRuntime & AgentRuntime;
  testDb: TestDatabase;
  queries: RoundTripCounter;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Environment for loadConfig (FAST_RUNTIME_ENV and a silent log are the defaults). */
  env?: Record<string, string>;
  limits?: Partial<ApiLimits>;
  logger?: Logger;
  /** Agents in code (loadAgents), registered at start as `npm start` does. */
  agents?: readonly LoadedAgent[];
  /** Serve the built dashboard (web/dist) at / as `npm start` does. */
  dashboard?: boolean;
}

export async function startTestServer(
  kind: TestDatabaseKind,
  options: StartOptions = {},
): Promise<TestServer> {
  const testDb = await openTestDatabase(kind);
  const queries: RoundTripCounter = { count: 0 };
  const config = loadConfig({
    ...FAST_RUNTIME_ENV,
    LOG_LEVEL: 'silent',
    // Suites not about quotas send many operations from one address; quotas.test.ts sets its own.
    CAS_MUTATION_RATE_LIMIT: '0',
    CAS_MAX_SOCKETS_PER_CALLER: '0',
    CAS_MAX_SSE_STREAMS_PER_CALLER: '0',
    CAS_MAX_SUBSCRIPTIONS_PER_SOCKET: '0',
    // The mode the server reports matches the database it runs on; the Supabase kind reaches its
    // database only through SUPABASE_URL (the doubles), so it gets no DATABASE_URL.
    ...(testDb.env ?? (testDb.url ? { DATABASE_URL: testDb.url } : {})),
    // Callers are the local admin unless a test configures authentication (the Supabase kind's
    // SUPABASE_URL would otherwise turn JWT verification on).
    CAS_AUTH: 'local',
    ...options.env,
    PORT: '0',
    HOST: '127.0.0.1',
  });
  const logger = options.logger ?? silentLogger();
  const runtime = await createRuntime({
    config,
    logger,
    agents: options.agents,
    // Round trips are counted on the databases the runtime reaches directly.
    database: testDb.env ? undefined : countingDatabase(testDb.db, queries),
  });
  const dashboard = options.dashboard ? await loadDashboard() : null;
  const app = buildApp({ config, runtime, logger, limits: options.limits, dashboard });
  const { url } = await app.start();
  return {
    url,
    origin: new URL(url).origin,
    app,
    runtime,
    testDb,
    queries,
    close: async () => {
      await app.stop();
      await runtime.shutdown({ deadlineMs: 1_000 });
      await testDb.close();
    },
  };
}

/** Answers in tests are indexed freely; every value read is asserted, which is the type check here. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyData = any;

export interface GraphQLResponse<Data = Record<string, unknown>> {
  status: number;
  contentType: string | null;
  body: {
    data?: Data | null;
    errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
  };
}

/** POSTs one operation as application/json and parses the answer. */
export async function gql<Data = AnyData>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<Data>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...headers,
    },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: (await response.json()) as GraphQLResponse<Data>['body'],
  };
}

/** The data of a successful operation; fails the test with the errors otherwise. */
export async function data<Data = AnyData>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<Data> {
  const { status, body } = await gql<Data>(url, query, variables);
  if (status !== 200 || body.errors?.length || !body.data) {
    throw new Error(`operation failed (${status}): ${JSON.stringify(body.errors ?? body)}`);
  }
  return body.data;
}

/** The codes of the errors of a response, in order. */
export const errorCodes = (response: GraphQLResponse) =>
  (response.body.errors ?? []).map((error) => error.extensions?.code);

/**
 * How long a task the test runs to its end may take before `reportingStalls` fails with what the
 * database holds: far above the few hundred milliseconds these take, below the suite's 30 s.
 */
export const TASK_STALL_REPORT_MS = 25_000;

/**
 * `work`, or after `afterMs` an error that says where the server's tasks stand (status, attempts,
 * lease) and what its database sessions wait on, instead of the suite's bare timeout. For tests
 * that run a task to its end, so that a stall on a loaded machine leaves something to go on.
 */
export async function reportingStalls<T>(
  server: TestServer,
  work: Promise<T>,
  afterMs = TASK_STALL_REPORT_MS,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      void describeTasks(server).then(
        (state) => reject(new Error(`no answer after ${afterMs} ms; ${state}`)),
        (error: unknown) =>
          reject(new Error(`no answer after ${afterMs} ms; state unreadable: ${String(error)}`)),
      );
    }, afterMs);
  });
  try {
    return await Promise.race([work, stalled]);
  } finally {
    clearTimeout(timer);
  }
}

async function describeTasks(server: TestServer): Promise<string> {
  const tasks = await server.testDb.db.query(
    `select id, agent_id, action, status, attempts, worker_id, lease_expires_at, created_at, started_at, finished_at
     from cas_tasks order by seq desc limit 5`,
  );
  const sessions =
    server.testDb.kind === 'pglite'
      ? []
      : await server.testDb.db.query(
          `select state, wait_event_type, wait_event, left(query, 120) as query from pg_stat_activity
           where datname = current_database() and pid <> pg_backend_pid()`,
        );
  return `tasks: ${JSON.stringify(tasks)}; sessions: ${JSON.stringify(sessions)}`;
}
