/**
 * HTTP: the real server (src/server/main.ts, API only: CAS_WORKERS=0) against a bare node:http
 * server answering the same bytes, with autocannon, for 1 and 2 server processes (node:cluster,
 * one port, for both servers alike); and, with 1 process, the same server with OpenTelemetry tracing
 * on (exporting to a sink), for the cost of tracing. Every response is checked against the
 * expected body.
 */
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import { addAgents } from './fixtures.js';
import { BENCH_QUOTAS_OFF, startChild, type Child } from './lib/child.js';
import { freePort } from '../test/support/net.js';
import { startOtlpSink } from './lib/otlp-sink.js';
import { progress } from './lib/progress.js';
import { ratio } from './lib/stats.js';

const DASHBOARD =
  '{ agents { id status metrics { totalRuns successRate } state { version } recentTasks(first: 5) { id status } } }';

/** Agents registered for the dashboard200 row, beside the 8 built-in ones. */
const MORE_AGENTS = 192;

export const QUERIES = {
  health: '{ health { ok } }',
  /** What plain graphql-yoga serves: the floor of any GraphQL request on this stack. */
  typename: '{ __typename }',
  dashboard: DASHBOARD,
  /** The same, once 192 more agents are registered (200 in all). */
  dashboard200: DASHBOARD,
} as const;

export type QueryName = keyof typeof QUERIES;

export interface HttpSettings {
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  processCounts: number[];
}

/**
 * bare node:http; the GraphQL server; the same with OpenTelemetry tracing on; the same measured in
 * turns with plain graphql-yoga (bench/servers/plain-yoga.ts).
 */
export type HttpServer =
  'graphql' | 'bare' | 'graphql-traced' | 'graphql-paired' | 'plain-yoga' | 'graphql-deployed';

export interface HttpRun {
  server: HttpServer;
  query: QueryName;
  processes: number;
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMeanMs: number;
  requests: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  mismatches: number;
  responseBytes: number;
}

export interface HttpRatio {
  query: QueryName;
  processes: number;
  /** GraphQL requests/s divided by bare node:http requests/s (1 = no cost). */
  graphqlOverBareRps: number;
  /** GraphQL mean latency divided by bare mean latency (autocannon's percentiles are whole ms). */
  graphqlOverBareMeanLatency: number;
}

export interface HttpResults {
  settings: HttpSettings;
  runs: HttpRun[];
  ratios: HttpRatio[];
  /** Requests/s with 2 processes divided by 1 process, per server and query. */
  scaling: { server: 'graphql' | 'bare'; query: QueryName; twoOverOne: number }[];
  /** `health` requests/s with tracing on divided by off, 1 process, same run (1 = free). */
  tracingOnOverOffRps?: number;
  /** `{ health { ok } }` requests/s of the API over `{ __typename }` of plain yoga, 1 process. */
  healthOverPlainYogaRps?: number;
}

const BODY = (query: QueryName) => JSON.stringify({ query: QUERIES[query] });

interface Canned {
  body: string;
  contentType: string;
  response: string;
  /** Request headers beside content-type (the deployed rows' bearer token). */
  headers?: Record<string, string>;
}

async function fetchCanned(
  url: string,
  query: QueryName,
  headers: Record<string, string> = {},
): Promise<Canned> {
  const body = BODY(query);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await response.text();
  const parsed = JSON.parse(text) as { errors?: unknown; data?: unknown };
  if (response.status !== 200 || parsed.errors || !parsed.data) {
    throw new Error(`${query} query failed (${response.status}): ${text.slice(0, 500)}`);
  }
  return {
    body,
    contentType: response.headers.get('content-type') ?? 'application/json',
    response: text,
    headers,
  };
}

async function load(
  url: string,
  canned: Canned,
  connections: number,
  seconds: number,
): Promise<autocannon.Result> {
  return autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...canned.headers },
    body: canned.body,
    expectBody: canned.response,
    connections,
    duration: seconds,
  });
}

async function startCluster(target: string, processes: number, env: Record<string, string>) {
  const port = await freePort();
  const child = await startChild(
    'bench/servers/cluster.ts',
    {
      // Thousands of operations from one address on purpose: per-caller quotas off.
      ...BENCH_QUOTAS_OFF,
      ...env,
      BENCH_TARGET: target,
      BENCH_PROCESSES: String(processes),
      PORT: String(port),
      HOST: '127.0.0.1',
    },
    'cluster ready',
  );
  return { child, url: `http://127.0.0.1:${port}/graphql` };
}

/** The API server (API only: CAS_WORKERS=0) on `processes` processes, with `env` added. */
const startApi = (databaseUrl: string, processes: number, env: Record<string, string> = {}) =>
  startCluster('src/server/main.ts', processes, {
    DATABASE_URL: databaseUrl,
    CAS_WORKERS: '0',
    LOG_LEVEL: 'warn',
    ...env,
  });

interface Row {
  server: HttpServer;
  query: QueryName;
  processes: number;
  url: string;
  canned: Canned;
}

const rowLabel = (row: Row, settings: HttpSettings) =>
  `${row.server} ${row.query}, ${row.processes} process(es), ${settings.connections} connections`;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** One row from one or more autocannon runs of it: requests/s over all, latencies their medians. */
function recordRun(runs: HttpRun[], settings: HttpSettings, row: Row, results: autocannon.Result[]): void {
  const sum = (pick: (result: autocannon.Result) => number) =>
    results.reduce((total, r) => total + pick(r), 0);
  const run: HttpRun = {
    server: row.server,
    query: row.query,
    processes: row.processes,
    requestsPerSecond: sum((r) => r.requests.total) / sum((r) => r.duration),
    latencyP50Ms: median(results.map((r) => r.latency.p50)),
    latencyP99Ms: median(results.map((r) => r.latency.p99)),
    latencyMeanMs: sum((r) => r.latency.average * r.requests.total) / sum((r) => r.requests.total),
    requests: sum((r) => r.requests.total),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    mismatches: sum((r) => r.mismatches),
    responseBytes: Buffer.byteLength(row.canned.response),
  };
  runs.push(run);
  progress(
    `HTTP: ${rowLabel(row, settings)}: ${Math.round(run.requestsPerSecond)} req/s, p50 ${run.latencyP50Ms} ms, ` +
      `p99 ${run.latencyP99Ms} ms, errors ${run.errors + run.non2xx + run.mismatches}`,
  );
}

/** One autocannon row (after its warm-up) against `url`, recorded in `runs`. */
async function measure(runs: HttpRun[], settings: HttpSettings, row: Row): Promise<void> {
  progress(
    `HTTP: ${rowLabel(row, settings)}: warm-up ${settings.warmupSeconds} s, then ${settings.durationSeconds} s`,
  );
  if (settings.warmupSeconds > 0)
    await load(row.url, row.canned, settings.connections, settings.warmupSeconds);
  recordRun(runs, settings, row, [
    await load(row.url, row.canned, settings.connections, settings.durationSeconds),
  ]);
}

/**
 * `{ health { ok } }` on one process with tracing on, exporting every span (OTLP/protobuf, the
 * default) to a sink; beside the same row with tracing off, measured just before.
 */
async function measureTracing(
  runs: HttpRun[],
  settings: HttpSettings,
  databaseUrl: string,
  canned: Canned,
): Promise<void> {
  const sink = await startOtlpSink();
  const traced = await startApi(databaseUrl, 1, {
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_SERVICE_NAME: 'cas-bench',
  });
  try {
    await measure(runs, settings, {
      server: 'graphql-traced',
      query: 'health',
      processes: 1,
      url: traced.url,
      canned,
    });
    if (sink.exports() === 0) throw new Error('the traced server exported no spans');
  } finally {
    await traced.child.stop();
    await sink.close();
  }
}

/**
 * Rounds of the API-overhead pair. The two servers are loaded in turn (A B B A, ...), each round a
 * share of the row's duration, so neither gets the quieter moments of a shared machine.
 */
const OVERHEAD_ROUNDS = 4;

/**
 * The API's own overhead: `{ health { ok } }` of the API against `{ __typename }` of plain
 * graphql-yoga (bench/servers/plain-yoga.ts), 1 process each, both running, measured alternately.
 */
async function measureApiOverhead(
  runs: HttpRun[],
  settings: HttpSettings,
  databaseUrl: string,
): Promise<void> {
  const api = await startApi(databaseUrl, 1);
  const yoga = await startCluster('bench/servers/plain-yoga.ts', 1, {});
  try {
    const rows: Row[] = [
      {
        server: 'graphql-paired',
        query: 'health',
        processes: 1,
        url: api.url,
        canned: await fetchCanned(api.url, 'health'),
      },
      {
        server: 'plain-yoga',
        query: 'typename',
        processes: 1,
        url: yoga.url,
        canned: await fetchCanned(yoga.url, 'typename'),
      },
    ];
    const seconds = Math.max(1, Math.round((settings.durationSeconds * 2) / OVERHEAD_ROUNDS));
    progress(
      `HTTP: API overhead, health vs plain yoga: ${OVERHEAD_ROUNDS} rounds of ${seconds} s each, alternated`,
    );
    for (const row of rows) {
      if (settings.warmupSeconds > 0)
        await load(row.url, row.canned, settings.connections, settings.warmupSeconds);
    }
    const results: autocannon.Result[][] = [[], []];
    for (let round = 0; round < OVERHEAD_ROUNDS; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const index of order) {
        results[index]!.push(
          await load(rows[index]!.url, rows[index]!.canned, settings.connections, seconds),
        );
      }
    }
    rows.forEach((row, index) => recordRun(runs, settings, row, results[index]!));
  } finally {
    await Promise.all([api.child.stop(), yoga.child.stop()]);
  }
}

/** The deployed server's HS256 secret: made up for the run, never a real one. */
const DEPLOYED_JWT_SECRET = `cas-bench-only-${process.pid}-${'x'.repeat(32)}`;

/** A Supabase-shaped access token for an admin, as a frontend sends with every request. */
const adminToken = () =>
  new SignJWT({
    sub: '00000000-0000-4000-8000-00000000bench',
    role: 'authenticated',
    app_metadata: { cas_role: 'admin' },
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime('2h')
    .setAudience('authenticated')
    .sign(new TextEncoder().encode(DEPLOYED_JWT_SECRET));

/**
 * `health` and `dashboard` on 1 process as a deployment runs it: NODE_ENV=production (which also
 * turns off graphql-js's development checks) with JWT authentication, each request carrying an
 * admin's bearer token.
 */
async function measureDeployed(runs: HttpRun[], settings: HttpSettings, databaseUrl: string): Promise<void> {
  const deployed = await startApi(databaseUrl, 1, {
    NODE_ENV: 'production',
    SUPABASE_JWT_SECRET: DEPLOYED_JWT_SECRET,
  });
  try {
    const headers = { authorization: `Bearer ${await adminToken()}` };
    for (const query of ['health', 'dashboard'] as const) {
      await measure(runs, settings, {
        server: 'graphql-deployed',
        query,
        processes: 1,
        url: deployed.url,
        canned: await fetchCanned(deployed.url, query, headers),
      });
    }
  } finally {
    await deployed.child.stop();
  }
}

/** The dashboard query on 1 process once the database holds 200 agents (last: it adds them). */
async function measureDashboardAt200(
  runs: HttpRun[],
  settings: HttpSettings,
  databaseUrl: string,
): Promise<void> {
  progress(`HTTP: registering ${MORE_AGENTS} more agents for the 200-agent dashboard`);
  await addAgents(databaseUrl, MORE_AGENTS);
  const graphql = await startApi(databaseUrl, 1);
  try {
    const canned = await fetchCanned(graphql.url, 'dashboard200');
    const agents = (JSON.parse(canned.response) as { data: { agents: unknown[] } }).data.agents.length;
    if (agents !== 8 + MORE_AGENTS) throw new Error(`the 200-agent dashboard answered ${agents} agents`);
    await measure(runs, settings, {
      server: 'graphql',
      query: 'dashboard200',
      processes: 1,
      url: graphql.url,
      canned,
    });
  } finally {
    await graphql.child.stop();
  }
}

export async function runHttp(databaseUrl: string, settings: HttpSettings): Promise<HttpResults> {
  const runs: HttpRun[] = [];
  const children: Child[] = [];
  try {
    for (const processes of settings.processCounts) {
      progress(`HTTP: starting the GraphQL server (${processes} process(es), API only) and the bare server`);
      const graphql = await startApi(databaseUrl, processes);
      children.push(graphql.child);
      const canned = {
        health: await fetchCanned(graphql.url, 'health'),
        dashboard: await fetchCanned(graphql.url, 'dashboard'),
      };
      const file = path.join(tmpdir(), `cas-bench-${process.pid}-responses.json`);
      await writeFile(file, JSON.stringify(Object.values(canned)));
      const bare = await startCluster('bench/servers/bare-http.ts', processes, { BENCH_RESPONSES: file });
      children.push(bare.child);

      for (const query of ['health', 'dashboard'] as const) {
        for (const server of ['bare', 'graphql'] as const) {
          const url = server === 'bare' ? bare.url : graphql.url;
          await measure(runs, settings, { server, query, processes, url, canned: canned[query] });
        }
      }
      await Promise.all([graphql.child.stop(), bare.child.stop()]);
      if (processes === 1) {
        await measureTracing(runs, settings, databaseUrl, canned.health);
        await measureApiOverhead(runs, settings, databaseUrl);
        await measureDeployed(runs, settings, databaseUrl);
      }
    }
    await measureDashboardAt200(runs, settings, databaseUrl);
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }

  const find = (server: HttpServer, query: QueryName, processes: number) =>
    runs.find((run) => run.server === server && run.query === query && run.processes === processes);
  const ratios: HttpRatio[] = [];
  const scaling: HttpResults['scaling'] = [];
  for (const query of ['health', 'dashboard'] as const) {
    for (const processes of settings.processCounts) {
      const graphql = find('graphql', query, processes);
      const bare = find('bare', query, processes);
      ratios.push({
        query,
        processes,
        graphqlOverBareRps: ratio(graphql?.requestsPerSecond, bare?.requestsPerSecond),
        graphqlOverBareMeanLatency: ratio(graphql?.latencyMeanMs, bare?.latencyMeanMs),
      });
    }
    for (const server of ['graphql', 'bare'] as const) {
      scaling.push({
        server,
        query,
        twoOverOne: ratio(
          find(server, query, 2)?.requestsPerSecond,
          find(server, query, 1)?.requestsPerSecond,
        ),
      });
    }
  }
  const tracingOnOverOffRps = ratio(
    find('graphql-traced', 'health', 1)?.requestsPerSecond,
    find('graphql', 'health', 1)?.requestsPerSecond,
  );
  const healthOverPlainYogaRps = ratio(
    find('graphql-paired', 'health', 1)?.requestsPerSecond,
    find('plain-yoga', 'typename', 1)?.requestsPerSecond,
  );
  return { settings, runs, ratios, scaling, tracingOnOverOffRps, healthOverPlainYogaRps };
}
