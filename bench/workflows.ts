/**
 * Workflows (issue 14's rows): the API process with one in-process worker on the PostgreSQL server,
 * driven over GraphQL as a client would.
 * - chain: a 10-step chain of `ping` steps; time from sending `executeWorkflow` to receiving the
 *   run's final event (`workflowRunEvents`, graphql-ws), one run at a time.
 * - map: one map step over 1,000 items of `ping`; items/s from `executeWorkflow` to the final
 *   event, beside the plain task throughput of the same process and database (1,000 `ping` tasks
 *   queued in one statement, measured until drained), run just before.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { openPostgres } from '../src/db/postgres.js';
import { freePort } from '../test/support/net.js';
import { casQueueDriver } from './lib/cas-queue.js';
import { BENCH_QUOTAS_OFF, startChild } from './lib/child.js';
import { progress } from './lib/progress.js';
import { measureThroughput } from './lib/queue-measure.js';
import { ratio, summarize, type LatencySummary } from './lib/stats.js';

export interface WorkflowSettings {
  chainRuns: number;
  chainSteps: number;
  mapItems: number;
  timeoutSeconds: number;
}

export interface WorkflowResults {
  settings: WorkflowSettings;
  /** executeWorkflow sent → final event received, ms. */
  chain: LatencySummary;
  map: { items: number; seconds: number; itemsPerSecond: number };
  plain: { tasks: number; seconds: number; tasksPerSecond: number };
  /** Map items/s over plain tasks/s (target ≥ 0.8). */
  mapOverPlain: number;
}

const EXECUTE = `mutation Run($definition: JSON!, $input: JSON) {
  executeWorkflow(input: { definition: $definition, input: $input }) { id status }
}`;
const FINAL_EVENTS = new Set(['workflow_succeeded', 'workflow_failed', 'workflow_cancelled']);

function chainDefinition(steps: number) {
  return {
    steps: Array.from({ length: steps }, (_, index) => ({
      id: `s${index + 1}`,
      agentId: 'marketer',
      action: 'ping',
      ...(index > 0 ? { dependsOn: [`s${index}`] } : {}),
    })),
  };
}

const MAP_DEFINITION = {
  steps: [{ id: 'items', agentId: 'marketer', action: 'ping', map: 'input.items', input: { $ref: 'item' } }],
};

/** Sends executeWorkflow and resolves with the time until the run's final event arrived, in ms. */
async function runToEnd(url: string, events: Client, definition: unknown, input: unknown, timeoutMs: number) {
  const started = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: EXECUTE, variables: { definition, input } }),
  });
  const body = (await response.json()) as { data?: { executeWorkflow: { id: string } }; errors?: unknown };
  if (!body.data) throw new Error(`executeWorkflow failed: ${JSON.stringify(body.errors)}`);
  const runId = body.data.executeWorkflow.id;
  // The stream replays the run's events from its start, so one that ended already is not missed.
  const final = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`run ${runId} did not end within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const stop = events.subscribe<{ workflowRunEvents: { type: string } }>(
      { query: `subscription { workflowRunEvents(id: "${runId}") { type } }` },
      {
        next: (message) => {
          const type = message.data?.workflowRunEvents.type;
          if (type && FINAL_EVENTS.has(type)) {
            clearTimeout(timer);
            stop();
            resolve(type);
          }
        },
        error: (error) => reject(new Error(`workflowRunEvents failed: ${JSON.stringify(error)}`)),
        complete: () => undefined,
      },
    );
  });
  const elapsed = performance.now() - started;
  if (final !== 'workflow_succeeded') throw new Error(`run ${runId} ended with ${final}`);
  return elapsed;
}

export async function runWorkflows(
  databaseUrl: string,
  settings: WorkflowSettings,
): Promise<WorkflowResults> {
  const port = await freePort();
  const server = await startChild(
    'src/server/main.ts',
    {
      ...BENCH_QUOTAS_OFF,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      // info: the start-up line is what startChild waits for.
      LOG_LEVEL: 'info',
    },
    'CAS Runtime API ready',
  );
  const url = `http://127.0.0.1:${port}/graphql`;
  const events = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, lazy: false });
  const db = openPostgres({ connectionString: databaseUrl, maxConnections: 2, applicationName: 'cas-bench' });
  const timeoutMs = settings.timeoutSeconds * 1000;
  try {
    progress(`workflows: plain throughput, ${settings.mapItems} ping tasks`);
    const driver = casQueueDriver('cas', db, async () => undefined);
    const plain = await measureThroughput(driver, settings.mapItems, timeoutMs);
    if (plain.timedOut) throw new Error(`plain tasks did not drain within ${settings.timeoutSeconds} s`);
    progress(`workflows: plain ${plain.tasksPerSecond.toFixed(0)} tasks/s`);

    progress(`workflows: ${settings.chainRuns} runs of a ${settings.chainSteps}-step chain`);
    const chain = chainDefinition(settings.chainSteps);
    await runToEnd(url, events, chain, null, timeoutMs); // warm-up
    const chainMs: number[] = [];
    for (let run = 0; run < settings.chainRuns; run += 1)
      chainMs.push(await runToEnd(url, events, chain, null, timeoutMs));
    const chainSummary = summarize(chainMs);
    progress(`workflows: chain p50 ${chainSummary.p50.toFixed(1)} ms, p90 ${chainSummary.p90.toFixed(1)} ms`);

    progress(`workflows: a map over ${settings.mapItems} items`);
    const items = Array.from({ length: settings.mapItems }, (_, index) => index);
    const mapMs = await runToEnd(url, events, MAP_DEFINITION, { items }, timeoutMs);
    const map = {
      items: settings.mapItems,
      seconds: mapMs / 1000,
      itemsPerSecond: settings.mapItems / (mapMs / 1000),
    };
    progress(`workflows: map ${map.itemsPerSecond.toFixed(0)} items/s`);
    return {
      settings,
      chain: chainSummary,
      map,
      plain: { tasks: plain.tasks, seconds: plain.seconds, tasksPerSecond: plain.tasksPerSecond },
      mapOverPlain: ratio(map.itemsPerSecond, plain.tasksPerSecond),
    };
  } finally {
    await events.dispose();
    await db.close();
    await server.stop();
  }
}
