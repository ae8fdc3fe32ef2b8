/**
 * OpenTelemetry across processes: an API process (no workers) and a worker process, both exporting
 * OTLP/JSON to a collector double. A request carrying a client's traceparent queues a task; the
 * worker's attempt span is a child of the API's operation span, in the client's trace, and the
 * database calls of each are spans under them.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inSpan, operationTracingPlugins, startTracing } from '../../src/observability/tracing.js';
import { silentLogger } from '../../src/logger.js';
import { startOtlpCollector, type OtlpCollector } from '../doubles/otlp-collector.js';
import { freePort } from '../support/net.js';
import { parsePrometheusText } from '../support/prometheus-text.js';
import { testDatabaseKinds } from '../support/databases.js';
import { startProcess, stopProcess, type ServiceProcess } from '../support/processes.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';

describe('tracing off', () => {
  it('without OTEL_* settings no SDK starts and spans are not even created', async () => {
    expect(await startTracing(null, silentLogger())).toBeNull();
    expect(operationTracingPlugins()).toEqual([]);
    // The span handed to the work is the invalid (all-zero) one: nothing was created.
    const traceId = inSpan('unrecorded', {}, async (span) => span.spanContext().traceId);
    return expect(traceId).resolves.toBe('0'.repeat(32));
  });
});

describe.skipIf(!testDatabaseKinds.includes('postgres'))(
  'traces from a request to a task attempt [postgres]',
  () => {
    let t: TestRuntime;
    let collector: OtlpCollector;
    const processes: ServiceProcess[] = [];
    let apiUrl: string;
    let workerMetricsUrl: string;

    beforeAll(async () => {
      // A fresh database for the two processes; this runtime only migrates it.
      t = await openTestRuntime('postgres', { CAS_WORKERS: '0' });
      collector = await startOtlpCollector();
      const env = {
        DATABASE_URL: t.testDb.url!,
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        // Export within 100 ms of a span ending, not the default 5 s.
        OTEL_BSP_SCHEDULE_DELAY: '100',
        CAS_SHUTDOWN_TIMEOUT_MS: '1000',
      };
      const [api, worker] = await Promise.all([
        startProcess(
          'src/server/main.ts',
          { ...env, PORT: '0', CAS_WORKERS: '0', OTEL_SERVICE_NAME: 'cas-api' },
          'CAS Runtime API ready at',
        ),
        startProcess(
          'src/server/worker-main.ts',
          { ...env, OTEL_SERVICE_NAME: 'cas-worker', CAS_METRICS_PORT: String(await freePort()) },
          'worker started',
        ),
      ]);
      processes.push(api, worker);
      apiUrl = /ready at (http:\/\/\S+\/graphql)/.exec(api.output())![1]!;
      workerMetricsUrl = /"metrics":"(http:\/\/[^"]+)"/.exec(worker.output())![1]!;
    }, 180_000);

    afterAll(async () => {
      await Promise.all(processes.map((process) => stopProcess(process, 'SIGKILL')));
      await collector?.close();
      await t?.close();
    });

    it(
      "the worker span of the attempt is a child of the request span, in the caller's trace",
      { timeout: 120_000 },
      async () => {
        const traceId = randomBytes(16).toString('hex');
        const clientSpanId = randomBytes(8).toString('hex');
        const response = await fetch(apiUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${clientSpanId}-01` },
          body: JSON.stringify({
            query:
              'mutation TracedPing { executeTask(input: { agentId: "marketer", action: "ping", wait: true }) { id status } }',
          }),
        });
        const body = (await response.json()) as { data: { executeTask: { id: string; status: string } } };
        expect(body.data.executeTask.status).toBe('SUCCEEDED');
        const taskId = body.data.executeTask.id;

        const request = await collector.waitForSpan(
          (span) => span.service === 'cas-api' && span.name === 'mutation.TracedPing',
        );
        expect(request).toMatchObject({ traceId, parentSpanId: clientSpanId });
        const enqueue = await collector.waitForSpan(
          (span) =>
            span.service === 'cas-api' && span.name === 'db cas_enqueue_task' && span.traceId === traceId,
        );
        expect(enqueue.parentSpanId).toBe(request.spanId);

        const attempt = await collector.waitForSpan(
          (span) => span.service === 'cas-worker' && span.name === 'task marketer.ping',
        );
        expect(attempt).toMatchObject({
          traceId,
          parentSpanId: request.spanId,
          attributes: { 'cas.task.id': taskId, 'cas.agent.id': 'marketer', 'cas.task.outcome': 'succeeded' },
        });
        // The attempt's completion, written with the worker's next claim (a batch of one here).
        const complete = await collector.waitForSpan(
          (span) =>
            span.service === 'cas-worker' &&
            span.name === 'db cas_complete_and_claim_tasks' &&
            span.traceId === traceId,
        );
        expect(complete.parentSpanId).toBe(attempt.spanId);
      },
    );

    it('each process counts what it did: the worker serves its task counters on CAS_METRICS_PORT', async () => {
      const scrape = async (url: string) => parsePrometheusText(await (await fetch(url)).text());
      await collector.waitForSpan(
        (span) => span.service === 'cas-worker' && span.name === 'task marketer.ping',
      );
      const worker = await scrape(workerMetricsUrl);
      const api = await scrape(apiUrl.replace(/\/graphql$/, '/metrics'));
      const pings = { agent: 'marketer', action: 'ping' };
      expect(worker.value('cas_task_attempts_started_total', pings)).toBe(1);
      expect(worker.value('cas_tasks_finished_total', { ...pings, status: 'succeeded' })).toBe(1);
      expect(api.value('cas_task_attempts_started_total', pings)).toBe(0);
      expect(api.value('graphql_envelop_request', { operationName: 'TracedPing' })).toBe(1);
      // The shared queue reads the same from both.
      expect(worker.all('cas_tasks', { agent: 'marketer' })).toEqual(
        api.all('cas_tasks', { agent: 'marketer' }),
      );
      expect((await fetch(workerMetricsUrl.replace(/\/metrics$/, '/graphql'))).status).toBe(404);
    });
  },
);
