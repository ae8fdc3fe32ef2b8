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
import { BENCH_QUOTAS_OFF, startChild, type Child } from './lib/child.js';
import { freePort } from '../test/support/net.js';
import { startOtlpSink } from './lib/otlp-sink.js';
import { progress } from './lib/progress.js';
import { ratio } from './lib/stats.js';

export const QUERIES = {
  health: '{ health { ok } }',
  /** What plain graphql-yoga serves: the floor of any GraphQL request on this stack. */
  typename: '{ __typename }',
  dashboard:
    '{ agents { id status metrics { totalRuns successRate } state { version } recentTasks(first: 5) { id status } } }',
} as const;

export type QueryName = keyof typeof QUERIES;

export interface HttpSettings {
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  processCounts: number[];
}

/**
 * bare node:http; the GraphQL server; the same with OpenTelemetry tracing on; plain graphql-yoga
 * (bench/servers/plain-yoga.ts).
 */
export type HttpServer = 'graphql' | 'bare' | 'graphql-traced' | 'plain-yoga';

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
}

async function fetchCanned(url: string, query: QueryName): Promise<Canned> {
  const body = BODY(query);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const text = await response.text();
  const parsed = JSON.parse(text) as { errors?: unknown; data?: unknown };
  if (response.status !== 200 || parsed.errors || !parsed.data) {
    throw new Error(`${query} query failed (${response.status}): ${text.slice(0, 500)}`);
  }
  return { body, contentType: response.headers.get('content-type') ?? 'application/json', response: text };
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
    headers: { 'content-type': 'application/json' },
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

/** One autocannon row (after its warm-up) against `url`, recorded in `runs`. */
async function measure(
  runs: HttpRun[],
  settings: HttpSettings,
  row: { server: HttpServer; query: QueryName; processes: number; url: string; canned: Canned },
): Promise<void> {
  const { server, query, processes, url, canned } = row;
  const label = `${server} ${query}, ${processes} process(es), ${settings.connections} connections`;
  progress(`HTTP: ${label}: warm-up ${settings.warmupSeconds} s, then ${settings.durationSeconds} s`);
  if (settings.warmupSeconds > 0) await load(url, canned, settings.connections, settings.warmupSeconds);
  const result = await load(url, canned, settings.connections, settings.durationSeconds);
  const run: HttpRun = {
    server,
    query,
    processes,
    requestsPerSecond: result.requests.average,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    latencyMeanMs: result.latency.average,
    requests: result.requests.total,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    mismatches: result.mismatches,
    responseBytes: Buffer.byteLength(canned.response),
  };
  runs.push(run);
  progress(
    `HTTP: ${label}: ${Math.round(run.requestsPerSecond)} req/s, p50 ${run.latencyP50Ms} ms, ` +
      `p99 ${run.latencyP99Ms} ms, errors ${run.errors + run.non2xx + run.mismatches}`,
  );
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
  const traced = await startCluster('src/server/main.ts', 1, {
    DATABASE_URL: databaseUrl,
    CAS_WORKERS: '0',
    LOG_LEVEL: 'warn',
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

/** Plain graphql-yoga serving `{ __typename }`, 1 process: what the API's own stack adds is the rest. */
async function measurePlainYoga(runs: HttpRun[], settings: HttpSettings): Promise<void> {
  const yoga = await startCluster('bench/servers/plain-yoga.ts', 1, {});
  try {
    const canned = await fetchCanned(yoga.url, 'typename');
    await measure(runs, settings, {
      server: 'plain-yoga',
      query: 'typename',
      processes: 1,
      url: yoga.url,
      canned,
    });
  } finally {
    await yoga.child.stop();
  }
}

export async function runHttp(databaseUrl: string, settings: HttpSettings): Promise<HttpResults> {
  const runs: HttpRun[] = [];
  const children: Child[] = [];
  try {
    for (const processes of settings.processCounts) {
      progress(`HTTP: starting the GraphQL server (${processes} process(es), API only) and the bare server`);
      const graphql = await startCluster('src/server/main.ts', processes, {
        DATABASE_URL: databaseUrl,
        CAS_WORKERS: '0',
        LOG_LEVEL: 'warn',
      });
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
        await measurePlainYoga(runs, settings);
      }
    }
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
    find('graphql', 'health', 1)?.requestsPerSecond,
    find('plain-yoga', 'typename', 1)?.requestsPerSecond,
  );
  return { settings, runs, ratios, scaling, tracingOnOverOffRps, healthOverPlainYogaRps };
}
