/**
 * GET /metrics: the Prometheus exposition parsed with a text-format parser after real tasks ran
 * through the API. Counters move by exactly what ran, histograms have buckets, gauges read the
 * queue and the open sockets; only local callers (or a bearer token) may scrape.
 */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { boundedOperationNames } from '../../src/observability/graphql.js';
import { describeEachDatabase } from '../support/databases.js';
import { parsePrometheusText, type Exposition } from '../support/prometheus-text.js';
import { startTestServer, type TestServer } from './harness.js';

async function scrape(server: TestServer, headers: Record<string, string> = {}): Promise<Exposition> {
  const response = await fetch(`${server.origin}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await response.text());
}

async function graphql(server: TestServer, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: Record<string, { status?: string }>; errors?: unknown[] };
}

const RUN = `mutation RunTask($action: String!, $input: JSON, $maxAttempts: Int) {
  executeTask(input: { agentId: "gauged", action: $action, input: $input, maxAttempts: $maxAttempts,
                       retryDelayMs: 0, wait: true }) { id status }
}`;

describeEachDatabase('GET /metrics', (kind) => {
  let server: TestServer;
  let metrics: Exposition;

  beforeAll(async () => {
    server = await startTestServer(kind);
    await server.runtime.registerAgent({ id: 'gauged', name: 'Gauged', role: 'analyst' });
    // Two successes, a failure retried once then succeeding, a failure with no retry left.
    for (const variables of [
      { action: 'ping' },
      { action: 'ping' },
      { action: 'fail', input: { times: 1 }, maxAttempts: 2 },
      { action: 'fail', input: { times: 5 }, maxAttempts: 1 },
    ]) {
      const { data } = await graphql(server, RUN, variables);
      expect(data?.executeTask?.status).toMatch(/SUCCEEDED|FAILED/);
    }
    // One task due in an hour stays queued.
    await server.runtime.executeTask({
      agentId: 'gauged',
      action: 'ping',
      runAt: new Date(Date.now() + 3_600_000),
    });
    await graphql(
      server,
      'mutation MissingTask { cancelTask(id: "00000000-0000-0000-0000-000000000000") { id } }',
    );
    await graphql(server, 'query Broken { nope }');
    await graphql(server, 'query Unfinished { agents {');
    // Introspection is tooling, not traffic: not counted.
    await graphql(server, 'query Tooling { __schema { queryType { name } } }');
    metrics = await scrape(server);
  });
  afterAll(() => server?.close());

  it('counts attempts and final statuses by agent, action and outcome', () => {
    expect(metrics.value('cas_task_attempts_started_total', { agent: 'gauged', action: 'ping' })).toBe(2);
    expect(metrics.value('cas_task_attempts_started_total', { agent: 'gauged', action: 'fail' })).toBe(3);
    expect(
      metrics.value('cas_task_attempts_ended_total', {
        agent: 'gauged',
        action: 'fail',
        outcome: 'retry_scheduled',
      }),
    ).toBe(1);
    expect(
      metrics.value('cas_tasks_finished_total', { agent: 'gauged', action: 'ping', status: 'succeeded' }),
    ).toBe(2);
    expect(
      metrics.value('cas_tasks_finished_total', { agent: 'gauged', action: 'fail', status: 'succeeded' }),
    ).toBe(1);
    expect(
      metrics.value('cas_tasks_finished_total', { agent: 'gauged', action: 'fail', status: 'failed' }),
    ).toBe(1);
  });

  it('durations and queue waits are histograms with buckets', () => {
    expect(metrics.types.get('cas_task_attempt_duration_seconds')).toBe('histogram');
    const pings = { agent: 'gauged', action: 'ping', outcome: 'succeeded' };
    expect(metrics.value('cas_task_attempt_duration_seconds_count', pings)).toBe(2);
    const buckets = metrics.all('cas_task_attempt_duration_seconds_bucket', pings);
    expect(buckets.length).toBeGreaterThan(5);
    // Cumulative: never decreasing, and the last (+Inf) holds every observation.
    expect(buckets.map((bucket) => bucket.value)).toEqual(
      [...buckets.map((bucket) => bucket.value)].sort((a, b) => a - b),
    );
    expect(buckets.at(-1)).toMatchObject({ labels: { le: '+Inf' }, value: 2 });
    expect(metrics.value('cas_task_queue_wait_seconds_count', { agent: 'gauged' })).toBe(5);
  });

  it('reads the queue depth of every agent from the database, zeros included', () => {
    expect(metrics.value('cas_tasks', { agent: 'gauged', status: 'queued' })).toBe(1);
    expect(metrics.value('cas_tasks', { agent: 'gauged', status: 'running' })).toBe(0);
    const marketer = metrics.all('cas_tasks', { agent: 'marketer' });
    expect(marketer.map((sample) => sample.labels.status).sort()).toEqual(['queued', 'running', 'waiting']);
  });

  it('counts GraphQL operations by name, and errors by phase and code', () => {
    expect(
      metrics.value('graphql_envelop_request', { operationName: 'RunTask', operationType: 'mutation' }),
    ).toBe(4);
    expect(metrics.value('graphql_envelop_request_duration_count', { operationName: 'RunTask' })).toBe(4);
    expect(
      metrics.value('graphql_envelop_error_result', { operationName: 'MissingTask', code: 'NOT_FOUND' }),
    ).toBe(1);
    expect(
      metrics.value('graphql_envelop_error_result', {
        operationName: 'Broken',
        phase: 'validate',
        code: 'GRAPHQL_VALIDATION_FAILED',
      }),
    ).toBe(1);
    expect(
      metrics.value('graphql_envelop_error_result', { phase: 'parse', code: 'GRAPHQL_PARSE_FAILED' }),
    ).toBe(1);
    expect(metrics.all('graphql_envelop_request', { operationName: 'Tooling' })).toEqual([]);
    expect(
      metrics.value('graphql_yoga_http_duration_count', {
        operationName: 'RunTask',
        method: 'POST',
        statusCode: '200',
      }),
    ).toBe(4);
    expect(metrics.types.get('process_cpu_user_seconds_total')).toBe('counter');
  });

  it('gauges open sockets and running subscriptions', async () => {
    const client = createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
    });
    const events: unknown[] = [];
    const unsubscribe = client.subscribe(
      { query: 'subscription { agentStatusChanged(agentId: "gauged") { id } }' },
      { next: (event) => events.push(event), error: () => undefined, complete: () => undefined },
    );
    const gauges = async () => {
      const current = await scrape(server);
      return [current.value('cas_graphql_subscriptions_active'), current.value('cas_websocket_connections')];
    };
    // Scraped until it holds: the socket and the subscription start after subscribe() returns.
    await vi.waitFor(async () => expect(await gauges()).toEqual([1, 1]), { timeout: 20_000, interval: 50 });
    unsubscribe();
    await client.dispose();
    await vi.waitFor(async () => expect(await gauges()).toEqual([0, 0]), { timeout: 20_000, interval: 50 });
    expect(events).toEqual([]);
  });

  it('refuses callers a proxy forwarded when no token is set', async () => {
    const response = await fetch(`${server.origin}/metrics`, {
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(response.status).toBe(403);
    expect(await response.text()).toMatch(/CAS_METRICS_TOKEN/);
  });
});

describe('GET /metrics with CAS_METRICS_TOKEN', () => {
  let server: TestServer;
  const token = 'a-long-random-scrape-token';
  beforeAll(async () => {
    server = await startTestServer('pglite', { env: { CAS_METRICS_TOKEN: token } });
  });
  afterAll(() => server?.close());

  it('answers 401 without the token or with a wrong one, and the metrics with it', async () => {
    expect((await fetch(`${server.origin}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${server.origin}/metrics`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
    const metrics = await scrape(server, { authorization: `Bearer ${token}` });
    expect(metrics.types.get('cas_tasks')).toBe('gauge');
  });
});

describe('operation name labels', () => {
  it('keep well-formed names up to the limit; the rest are "other"', () => {
    const label = boundedOperationNames(2);
    expect([label('A'), label(undefined), label('B'), label('C'), label('A'), label('bad name')]).toEqual([
      'A',
      'anonymous',
      'B',
      'other',
      'A',
      'other',
    ]);
  });
});
