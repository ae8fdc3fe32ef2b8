/**
 * A LangGraph task across worker processes: the worker running a graph is killed with SIGKILL
 * in its fourth node; after its lease expires another worker process resumes the graph from the
 * last checkpoint, the three finished nodes do not run again (their side effects are counted in a
 * file), and the task completes.
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

const AGENTS_DIR = 'test/support/fixtures/graph-agents';
const WORKER_ENV = {
  CAS_RUNTIME: 'langgraph',
  CAS_AGENTS_DIR: AGENTS_DIR,
  CAS_WORKER_CONCURRENCY: '2',
  CAS_WORKER_POLL_MS: '200',
  CAS_TASK_LEASE_MS: '1500',
  CAS_SHUTDOWN_TIMEOUT_MS: '1000',
};

describe.skipIf(!testDatabaseKinds.includes('postgres'))(
  'LangGraph tasks across worker processes [postgres]',
  () => {
    let t: TestRuntime;
    let dir: string;
    const workers: ServiceProcess[] = [];

    beforeAll(async () => {
      // This process only queues (it knows the agent to check input); worker processes run it.
      const agents = await loadAgents({ dir: AGENTS_DIR, explicit: true, cwd: ROOT });
      t = await openTestRuntime('postgres', { CAS_WORKERS: '0', CAS_RUNTIME: 'langgraph' }, { agents });
      dir = await mkdtemp(path.join(tmpdir(), 'cas-relay-'));
    });
    afterAll(async () => {
      await Promise.all(workers.map((worker) => stopProcess(worker, 'SIGKILL')));
      await t?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it(
      'SIGKILL in the fourth node: another worker resumes from the checkpoint without running the first three again',
      { timeout: 180_000 },
      async () => {
        const env = { ...WORKER_ENV, DATABASE_URL: t.testDb.url! };
        workers.push(
          ...(await Promise.all(
            [1, 2].map(() => startProcess('src/server/worker-main.ts', env, 'worker started')),
          )),
        );
        const task = await t.runtime.executeTask({
          agentId: 'relay',
          action: 'relay',
          input: { dir },
          maxAttempts: 3,
        });
        const nodeEvents = async () =>
          (await t.runtime.getEventHistory({ taskId: task.id, first: 100 })).items
            .filter((event) => event.type.startsWith('step_'))
            .map((event) => `${event.type}:${String(event.payload.node)}:${String(event.payload.attempt)}`);
        await until('three nodes done and the fourth started', async () =>
          (await nodeEvents()).includes('step_started:four:1') ? true : undefined,
        );
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
        expect(done).toMatchObject({
          status: 'succeeded',
          result: { passed: ['one', 'two', 'three', 'four'] },
          attempts: 2,
        });
        expect((await readFile(path.join(dir, 'effects'), 'utf8')).trim().split('\n')).toEqual([
          'one',
          'two',
          'three',
          'four',
        ]);
        expect(await nodeEvents()).toEqual([
          'step_started:one:1',
          'step_completed:one:1',
          'step_started:two:1',
          'step_completed:two:1',
          'step_started:three:1',
          'step_completed:three:1',
          'step_started:four:1',
          'step_started:four:2',
          'step_completed:four:2',
        ]);
        const [checkpoints] = await t.runtime.getTaskCheckpoints([task.id], 100);
        expect(checkpoints![0]!.values).toMatchObject({ passed: ['one', 'two', 'three', 'four'] });
      },
    );
  },
);
