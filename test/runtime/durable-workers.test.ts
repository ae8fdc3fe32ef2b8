/**
 * Durable steps across worker processes: a worker killed with SIGKILL in the middle of a task with
 * three completed steps; after its lease expires another worker process replays the task, the
 * completed steps do not run again (their side effects are counted in a file), and it completes.
 */
import { describe, expect, it } from 'vitest';
import { testDatabaseKinds } from '../support/databases.js';
import { killedWorkerScenario } from '../support/killed-worker.js';

describe.skipIf(!testDatabaseKinds.includes('postgres'))(
  'durable steps across worker processes [postgres]',
  () => {
    const scenario = killedWorkerScenario({
      agentsDir: 'test/support/fixtures/durable-agents',
      agentId: 'ledger',
      action: 'post',
      // Three steps done and the fourth started.
      killWhen: (events) =>
        events.some((event) => event.type === 'step_started' && event.payload.step === 'four'),
    });

    it(
      'SIGKILL after three steps: another worker completes the task without running them again',
      { timeout: 180_000 },
      async () => {
        const { done, effects, events } = await scenario.run();
        expect(done).toMatchObject({ status: 'succeeded', result: { posted: true }, attempts: 2 });
        expect(effects).toEqual(['one', 'two', 'three', 'four']);
        const history = await events();
        const stepCompletions = history
          .filter((event) => event.type === 'step_completed')
          .map((event) => event.payload.step);
        expect(stepCompletions).toEqual(['one', 'two', 'three', 'four']);
        const retried = history.find((event) => event.type === 'task_retry_scheduled');
        expect(retried?.payload).toMatchObject({ reason: 'lease_expired' });
      },
    );
  },
);
