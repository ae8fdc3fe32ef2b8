/**
 * A LangGraph task across worker processes: the worker running a graph is killed with SIGKILL
 * in its fourth node; after its lease expires another worker process resumes the graph from the
 * last checkpoint, the three finished nodes do not run again (their side effects are counted in a
 * file), and the task completes.
 */
import { describe, expect, it } from 'vitest';
import { testDatabaseKinds } from '../support/databases.js';
import { killedWorkerScenario } from '../support/killed-worker.js';

describe.skipIf(!testDatabaseKinds.includes('postgres'))(
  'LangGraph tasks across worker processes [postgres]',
  () => {
    const scenario = killedWorkerScenario({
      agentsDir: 'test/support/fixtures/graph-agents',
      env: { CAS_RUNTIME: 'langgraph' },
      agentId: 'relay',
      action: 'relay',
      // Three nodes done and the fourth started.
      killWhen: (events) =>
        events.some((event) => event.type === 'step_started' && event.payload.node === 'four'),
    });

    it(
      'SIGKILL in the fourth node: another worker resumes from the checkpoint without running the first three again',
      { timeout: 180_000 },
      async () => {
        const { task, done, effects, events } = await scenario.run();
        expect(done).toMatchObject({
          status: 'succeeded',
          result: { passed: ['one', 'two', 'three', 'four'] },
          attempts: 2,
        });
        expect(effects).toEqual(['one', 'two', 'three', 'four']);
        const nodeEvents = (await events())
          .filter((event) => event.type.startsWith('step_'))
          .map((event) => `${event.type}:${String(event.payload.node)}:${String(event.payload.attempt)}`);
        expect(nodeEvents).toEqual([
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
        const [checkpoints] = await scenario.runtime().runtime.getTaskCheckpoints([task.id], 100);
        expect(checkpoints![0]!.values).toMatchObject({ passed: ['one', 'two', 'three', 'four'] });
      },
    );
  },
);
