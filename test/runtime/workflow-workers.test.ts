/**
 * Workflows across worker processes: three `npm run worker` processes share the PostgreSQL server;
 * the one running a workflow's long step is killed with SIGKILL. Its lease expires, another worker
 * runs the step's task again, and the run finishes: every step succeeds exactly once, every task
 * completes exactly once, and the hand-offs (queued in the transaction that completed a step's
 * last dependency) still happen whichever process completed the dependency.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseKinds } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { startProcess, stopProcess, type ServiceProcess } from '../support/processes.js';
import { until } from '../support/until.js';

const WORKER_ENV = {
  CAS_WORKER_CONCURRENCY: '4',
  CAS_WORKER_POLL_MS: '200',
  CAS_TASK_LEASE_MS: '1500',
  CAS_SHUTDOWN_TIMEOUT_MS: '1000',
};
/** The long step runs this long: the worker holding it is killed well before it ends. */
const LONG_STEP_MS = 4000;

describe.skipIf(!testDatabaseKinds.includes('postgres'))(
  'workflows across worker processes [postgres]',
  () => {
    let t: TestRuntime;
    const workers: ServiceProcess[] = [];

    beforeAll(async () => {
      // This process only queues; the three worker processes run every task.
      t = await openTestRuntime('postgres', { CAS_WORKERS: '0' });
    });
    afterAll(async () => {
      await Promise.all(workers.map((worker) => stopProcess(worker, 'SIGKILL')));
      await t?.close();
    });

    it(
      'SIGKILL of the worker running a step: the run finishes, each step and task completes once',
      { timeout: 240_000 },
      async () => {
        const env = { ...WORKER_ENV, DATABASE_URL: t.testDb.url! };
        workers.push(
          ...(await Promise.all(
            [1, 2, 3].map(() => startProcess('src/server/worker-main.ts', env, 'worker started')),
          )),
        );
        const run = await t.runtime.executeWorkflow({
          definition: {
            steps: [
              { id: 'first', agentId: 'marketer', action: 'ping' },
              {
                id: 'long',
                agentId: 'analyst',
                action: 'wait',
                input: { ms: LONG_STEP_MS },
                dependsOn: ['first'],
                maxAttempts: 3,
              },
              {
                id: 'fan',
                agentId: 'qa',
                action: 'ping',
                map: 'input.items',
                input: { $ref: 'item' },
                dependsOn: ['first'],
                // The killed worker may also hold some of these when it dies (it runs 4 at once).
                maxAttempts: 3,
              },
              { id: 'last', agentId: 'planner', action: 'ping', dependsOn: ['long', 'fan'], maxAttempts: 3 },
            ],
          },
          input: { items: [1, 2, 3, 4, 5, 6] },
        });

        const longTaskId = await until('the long step to run', async () => {
          const [steps] = await t.runtime.getWorkflowSteps([run.id]);
          const long = steps!.find((step) => step.id === 'long');
          if (!long?.taskId) return undefined;
          const [task] = await t.runtime.getTasks([long.taskId]);
          return task?.status === 'running' ? task.id : undefined;
        });
        const [running] = await t.runtime.getTasks([longTaskId]);
        const holder = workers.find((worker) => running!.workerId?.includes(`:${worker.child.pid}:`));
        expect(holder, `a worker process holds ${running!.workerId}`).toBeDefined();
        await stopProcess(holder!, 'SIGKILL');

        const finished = await until('the run to finish', async () => {
          const [current] = await t.runtime.getWorkflowRuns([run.id]);
          return current && current.status !== 'running' ? current : undefined;
        });
        expect(finished.status, JSON.stringify(finished.error)).toBe('succeeded');

        const [steps] = await t.runtime.getWorkflowSteps([run.id]);
        expect(steps!.map((step) => [step.id, step.status])).toEqual([
          ['first', 'succeeded'],
          ['long', 'succeeded'],
          ['fan', 'succeeded'],
          ['last', 'succeeded'],
        ]);
        expect(steps!.find((step) => step.id === 'fan')!.result).toEqual([
          { pong: true },
          { pong: true },
          { pong: true },
          { pong: true },
          { pong: true },
          { pong: true },
        ]);
        const runEvents = await t.testDb.db.query<{ event_type: string; step_id: string | null }>(
          `select event_type, payload->>'stepId' as step_id from cas_agent_events where workflow_run_id = $1 order by seq`,
          [run.id],
        );
        const succeededSteps = runEvents
          .filter((event) => event.event_type === 'workflow_step_succeeded')
          .map((event) => event.step_id)
          .sort();
        expect(succeededSteps).toEqual(['fan', 'first', 'last', 'long']);
        expect(runEvents.filter((event) => event.event_type === 'workflow_succeeded')).toHaveLength(1);

        // Every task of the run completed exactly once; the long one on its second attempt.
        const tasks = await t.testDb.db.query<{
          id: string;
          workflow_step_id: string;
          attempts: number;
          completions: number;
        }>(
          `select t.id, t.workflow_step_id, t.attempts,
              (select count(*)::int from cas_agent_events e where e.task_id = t.id and e.event_type = 'task_completed') as completions
       from cas_tasks t where t.workflow_run_id = $1`,
          [run.id],
        );
        expect(tasks).toHaveLength(1 + 1 + 6 + 1);
        expect(tasks.every((task) => task.completions === 1)).toBe(true);
        expect(tasks.find((task) => task.workflow_step_id === 'long')).toMatchObject({
          id: longTaskId,
          attempts: 2,
        });
        const retried = (await t.runtime.getEventHistory({ taskId: longTaskId, first: 100 })).items.find(
          (event) => event.type === 'task_retry_scheduled',
        );
        expect(retried?.payload).toMatchObject({ reason: 'lease_expired' });
      },
    );
  },
);
