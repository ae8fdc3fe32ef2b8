/**
 * Load: 200 concurrent clients for 60 seconds against the real server process (`npm start`'s
 * entry, its in-process worker, the PostgreSQL server), each mixing queries, mutations
 * (executeTask ping) and subscriptions (taskUpdated over graphql-ws until the task it just queued
 * has finished). Zero errors; latency percentiles are printed.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkTaskLog,
  createReliabilityDatabase,
  graphql,
  rssMiB,
  startServer,
  waitForAllFinal,
  type ReliabilityDatabase,
  type ServerProcess,
} from './support.js';

const CLIENTS = 200;
const DURATION_MS = 60_000;
/** One operation may take this long under full load before it counts as an error. */
const OPERATION_TIMEOUT_MS = 30_000;
const AGENTS = ['marketer', 'analyst', 'planner', 'developer', 'tester', 'qa', 'engineer', 'security'];

const QUERIES = {
  dashboard:
    '{ agents { id status metrics { totalRuns successRate } state { version } recentTasks(first: 5) { id status } } }',
  tasks: '{ tasks(first: 10) { totalCount edges { node { id status attempts agent { id } } } } }',
  events: '{ events(first: 20) { edges { cursor node { type taskId } } } }',
  health: '{ health { ok } }',
};
const EXECUTE = 'mutation($input: ExecuteTaskInput!) { executeTask(input: $input) { id status } }';
const UPDATED = 'subscription($id: ID!) { taskUpdated(id: $id) { id status attempts } }';

type Kind = keyof typeof QUERIES | 'executeTask' | 'subscription';

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Resolves with the last status the subscription saw once it completes. */
function followTask(client: Client, id: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let status = '';
    const timer = setTimeout(() => {
      dispose();
      reject(new Error(`taskUpdated ${id}: not final within ${OPERATION_TIMEOUT_MS} ms (last ${status})`));
    }, OPERATION_TIMEOUT_MS);
    const dispose = client.subscribe<{ taskUpdated: { status: string } }>(
      { query: UPDATED, variables: { id } },
      {
        next: (result) => {
          if (result.errors?.length) {
            clearTimeout(timer);
            reject(new Error(`taskUpdated ${id}: ${JSON.stringify(result.errors)}`));
          } else if (result.data) status = result.data.taskUpdated.status;
        },
        error: (error) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(`taskUpdated ${id}: ${JSON.stringify(error)}`));
        },
        complete: () => {
          clearTimeout(timer);
          resolve(status);
        },
      },
    );
  });
}

/** Each task's status, attempts and events (type, worker, time) by id, for an error message. */
async function taskHistories(db: ReliabilityDatabase['db'], ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<{ id: string; status: string; attempts: number; events: string[] }>(
    `select t.id, t.status, t.attempts,
            array_agg(e.event_type || coalesce(' ' || (e.payload ->> 'workerId'), '') || ' ' ||
                      to_char(e.created_at, 'HH24:MI:SS.MS') order by e.seq) as events
     from cas_tasks t join cas_agent_events e on e.task_id = t.id
     where t.id = any ($1::uuid[])
     group by t.id, t.status, t.attempts`,
    [ids],
  );
  return new Map(
    rows.map((row) => [
      row.id,
      `now ${row.status} after ${row.attempts} attempt(s): ${row.events.join(', ')}`,
    ]),
  );
}

describe('load', () => {
  let database: ReliabilityDatabase;
  let server: ServerProcess;

  beforeAll(async () => {
    database = await createReliabilityDatabase('load');
    server = await startServer({ DATABASE_URL: database.url });
  });
  afterAll(async () => {
    await server?.stop();
    await database?.close();
  });

  it(`${CLIENTS} concurrent clients for ${DURATION_MS / 1000} s: zero errors`, async () => {
    const latencies = new Map<Kind, number[]>();
    const errors: string[] = [];
    /** Tasks whose taskUpdated subscription timed out: their history is added to the errors. */
    const unfinished: string[] = [];
    let tasksQueued = 0;
    const record = (kind: Kind, ms: number) => {
      const list = latencies.get(kind) ?? [];
      list.push(ms);
      latencies.set(kind, list);
    };
    const timed = async <T>(kind: Kind, work: () => Promise<T>): Promise<T | undefined> => {
      const started = performance.now();
      try {
        const value = await work();
        record(kind, performance.now() - started);
        return value;
      } catch (error) {
        errors.push(`${kind}: ${error instanceof Error ? error.message : String(error)}`);
        return undefined;
      }
    };
    const query = async (text: string, variables?: Record<string, unknown>) => {
      const answer = await graphql(server.url, text, variables);
      if (answer.status !== 200 || answer.errors?.length || !answer.data) {
        throw new Error(`${answer.status} ${JSON.stringify(answer.errors ?? answer).slice(0, 300)}`);
      }
      return answer.data;
    };

    const wsUrl = server.url.replace(/^http/, 'ws');
    const baseline = await rssMiB(server.pid);
    const deadline = performance.now() + DURATION_MS;
    const clients = Array.from({ length: CLIENTS }, (_, index) => async () => {
      const ws = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
      try {
        for (let round = 0; performance.now() < deadline; round++) {
          const pick = (index * 7 + round) % 10;
          if (pick < 5) {
            const name = (['dashboard', 'tasks', 'events', 'health', 'dashboard'] as const)[pick]!;
            await timed(name, () => query(QUERIES[name]));
          } else {
            const agentId = AGENTS[(index + round) % AGENTS.length]!;
            const data = await timed('executeTask', () =>
              query(EXECUTE, { input: { agentId, action: 'ping' } }),
            );
            const id = (data as { executeTask?: { id: string } } | undefined)?.executeTask?.id;
            if (!id) continue;
            tasksQueued++;
            if (pick >= 8) {
              const status = await timed('subscription', () =>
                followTask(ws, id).catch((error: unknown) => {
                  unfinished.push(id);
                  throw error;
                }),
              );
              if (status !== undefined && status !== 'SUCCEEDED') {
                errors.push(`subscription: task ${id} ended ${status || 'without a status'}`);
              }
            }
          }
        }
      } finally {
        await ws.dispose();
      }
    });
    const startedAt = performance.now();
    await Promise.all(clients.map((client) => client()));
    const seconds = (performance.now() - startedAt) / 1000;
    const peak = await rssMiB(server.pid);

    // Every task the clients queued ends, once.
    const open = await waitForAllFinal(database.db, 60_000);
    const check = await checkTaskLog(database.db);
    // A timed-out subscription's error says what its task did meanwhile.
    const histories = await taskHistories(database.db, unfinished);
    for (const [index, error] of errors.entries()) {
      const id = unfinished.find((taskId) => error.includes(taskId));
      if (id && histories.has(id)) errors[index] = `${error}; ${histories.get(id)}`;
    }

    const all = [...latencies.values()].flat().sort((a, b) => a - b);
    const lines = [...latencies].map(([kind, values]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return `  ${kind}: ${values.length} ops, p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms`;
    });
    console.log(
      `[reliability] load: ${CLIENTS} clients for ${seconds.toFixed(1)} s: ${all.length} operations ` +
        `(${(all.length / seconds).toFixed(0)}/s), ${errors.length} errors, ` +
        `p50 ${percentile(all, 50).toFixed(1)} ms, p99 ${percentile(all, 99).toFixed(1)} ms\n${lines.join('\n')}\n` +
        `  tasks: ${tasksQueued} queued, ${JSON.stringify(check.byStatus)}; server RSS ${baseline.toFixed(0)} → ${peak.toFixed(0)} MiB`,
    );

    expect(errors.slice(0, 10), `${errors.length} error(s)`).toEqual([]);
    expect(server.child.exitCode).toBeNull();
    expect(open).toBe(0);
    expect(check.tasks).toBe(tasksQueued);
    expect(check.byStatus).toEqual({ succeeded: tasksQueued });
    expect(check.severalFinalEvents).toEqual([]);
    expect(check.contiguous).toBe(true);
  }, 240_000);
});
