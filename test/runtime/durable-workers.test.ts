/**
 * Durable steps across worker processes: a worker killed with SIGKILL in the middle of a task with
 * three completed steps; after its lease expires another worker process replays the task, the
 * completed steps do not run again (their side effects are counted in a file), and it completes.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAgents } from '../../src/agents/loader.js';
import { testDatabaseKinds } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { startProcess, stopProcess, type ServiceProcess } from '../support/processes.js';
import { ROOT } from '../support/spawned.js';
import { until } from '../support/until.js';

const AGENTS_DIR = 'test/support/fixtures/durable-agents';
const WORKER_ENV = {
  CAS_AGENTS_DIR: AGENTS_DIR,
  CAS_WORKER_CONCURRENCY: '2',
  CAS_WORKER_POLL_MS: '200',
  CAS_TASK_LEASE_MS: '1500',
  CAS_SHUTDOWN_TIMEOUT_MS: '1000',
};

describe.skipIf(!testDatabaseKinds.includes('postgres'))(
  'durable steps across worker processes [postgres]',
  () => {
    let t: TestRuntime;
    let dir: string;
    const workers: ServiceProcess[] = [];

    beforeAll(async () => {
      // This process only queues (it knows the agent to check input); worker processes run it.
      const agents = await loadAgents({ dir: AGENTS_DIR, explicit: true, cwd: ROOT });
      t = await openTestRuntime('postgres', { CAS_WORKERS: '0' }, { agents });
      dir = await mkdtemp(path.join(tmpdir(), 'cas-ledger-'));
    });
    afterAll(async () => {
      await Promise.all(workers.map((worker) => stopProcess(worker, 'SIGKILL')));
      await t?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it(
      'SIGKILL after three steps: another worker completes the task without running them again',
      { timeout: 180_000 },
      async () => {
        const env = { ...WORKER_ENV, DATABASE_URL: t.testDb.url! };
        workers.push(
          ...(await Promise.all(
            [1, 2].map(() => startProcess('src/server/worker-main.ts', env, 'worker started')),
          )),
        );
        const task = await t.runtime.executeTask({
          agentId: 'ledger',
          action: 'post',
          input: { dir },
          maxAttempts: 3,
        });
        const stepCompletions = async () =>
          (await t.runtime.getEventHistory({ taskId: task.id, first: 100 })).items
            .filter((event) => event.type === 'step_completed')
            .map((event) => event.payload.step);
        await until('three steps done and the fourth started', async () => {
          const events = (await t.runtime.getEventHistory({ taskId: task.id, first: 100 })).items;
          return events.some((event) => event.type === 'step_started' && event.payload.step === 'four')
            ? true
            : undefined;
        });
        const [running] = await t.runtime.getTasks([task.id]);
        const holder = workers.find((worker) => running!.workerId?.includes(`:${worker.child.pid}:`));
        expect(holder, `a worker process holds ${running!.workerId}`).toBeDefined();
        await stopProcess(holder!, 'SIGKILL');
        await writeFile(path.join(dir, 'go'), '');

        const done = await until('the task to finish', async () => {
          const [current] = await t.runtime.getTasks([task.id]);
          return current && ['succeeded', 'failed', 'cancelled'].includes(current.status)
            ? current
            : undefined;
        });
        expect(done).toMatchObject({ status: 'succeeded', result: { posted: true }, attempts: 2 });
        expect((await readFile(path.join(dir, 'effects'), 'utf8')).trim().split('\n')).toEqual([
          'one',
          'two',
          'three',
          'four',
        ]);
        expect(await stepCompletions()).toEqual(['one', 'two', 'three', 'four']);
        const retried = (await t.runtime.getEventHistory({ taskId: task.id, first: 100 })).items.find(
          (event) => event.type === 'task_retry_scheduled',
        );
        expect(retried?.payload).toMatchObject({ reason: 'lease_expired' });
      },
    );
  },
);
