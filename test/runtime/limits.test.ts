import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Task } from '../../src/domains/task/task.js';
import { silentLogger } from '../../src/logger.js';
import { createRuntime } from '../../src/runtime/create-runtime.js';
import type { CustomRuntime } from '../../src/runtime/custom-runtime.js';
import { describeEachDatabase } from '../support/databases.js';
import { FAST_RUNTIME_ENV, openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { until } from '../support/until.js';

const statuses = async (t: TestRuntime, tasks: Task[]) =>
  (await t.runtime.getTasks(tasks.map((task) => task.id))).map((task) => task?.status);

/**
 * An agent whose `hold` action runs until the test opens its gate, counting how many run at once
 * (per caller too, from the task input).
 */
async function gatedAgent(runtime: CustomRuntime, id: string, maxConcurrency?: number) {
  const gates: Array<() => void> = [];
  const active = new Map<string, number>();
  const most = new Map<string, number>();
  await runtime.registerAgent(
    { id, name: id, role: 'qa', maxConcurrency },
    {
      actions: {
        hold: async (input) => {
          const key = String((input as { caller?: string } | null)?.caller ?? 'all');
          active.set(key, (active.get(key) ?? 0) + 1);
          most.set(key, Math.max(most.get(key) ?? 0, active.get(key)!));
          await new Promise<void>((resolve) => gates.push(resolve));
          active.set(key, active.get(key)! - 1);
          return { ok: true };
        },
      },
    },
  );
  return {
    /** Lets every attempt waiting now finish. */
    openAll: () => gates.splice(0).forEach((open) => open()),
    waiting: () => gates.length,
    mostAtOnce: (key = 'all') => most.get(key) ?? 0,
  };
}

/** A task of another agent queued now and finished: proof that the worker claimed since. */
async function workerClaimedSince(t: TestRuntime) {
  const ping = await t.runtime.executeTask({ agentId: 'analyst', action: 'ping', wait: true });
  expect(ping.status).toBe('succeeded');
}

describeEachDatabase('concurrency limits', (kind) => {
  describe('per agent', () => {
    let t: TestRuntime;
    beforeAll(async () => {
      t = await openTestRuntime(kind, { CAS_WORKER_CONCURRENCY: '10' });
    });
    afterAll(() => t.close());

    it('an agent with maxConcurrency 1 runs its tasks one at a time while other agents run', async () => {
      const agent = await gatedAgent(t.runtime, 'narrow', 1);
      expect((await t.runtime.getAgentStatus('narrow')).maxConcurrency).toBe(1);
      const tasks: Task[] = [];
      for (let index = 0; index < 3; index += 1)
        tasks.push(await t.runtime.executeTask({ agentId: 'narrow', action: 'hold' }));
      for (let done = 0; done < 3; done += 1) {
        await until('an attempt to wait at its gate', async () => (agent.waiting() === 1 ? true : undefined));
        // Free slots, due tasks, and the worker claims other work meanwhile: these stay queued.
        await workerClaimedSince(t);
        expect((await statuses(t, tasks)).filter((status) => status === 'running')).toHaveLength(1);
        agent.openAll();
      }
      await until('all three to succeed', async () =>
        (await statuses(t, tasks)).every((status) => status === 'succeeded') ? true : undefined,
      );
      expect(agent.mostAtOnce()).toBe(1);
    });

    it('registering again sets or clears the limit', async () => {
      await t.runtime.registerAgent({ id: 'narrow', name: 'narrow', role: 'qa', maxConcurrency: 4 });
      expect((await t.runtime.getAgentStatus('narrow')).maxConcurrency).toBe(4);
      await t.runtime.registerAgent({ id: 'narrow', name: 'narrow', role: 'qa' });
      expect((await t.runtime.getAgentStatus('narrow')).maxConcurrency).toBeNull();
      await expect(
        t.runtime.registerAgent({ id: 'narrow', name: 'narrow', role: 'qa', maxConcurrency: 0 }),
      ).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    });
  });

  describe('a claim that passes over tasks', () => {
    let t: TestRuntime;
    beforeAll(async () => {
      t = await openTestRuntime(kind, { CAS_WORKERS: '0' });
    });
    afterAll(() => t.close());

    // A second runtime, with the worker, on the same database: PostgreSQL, whose URL it can open.
    it.skipIf(kind !== 'postgres')(
      'looks again at once when it picked as many tasks as it asked for',
      async () => {
        await t.runtime.registerAgent({
          id: 'one-at-a-time',
          name: 'one-at-a-time',
          role: 'qa',
          maxConcurrency: 1,
        });
        const held: Task[] = [];
        for (let index = 0; index < 2; index += 1)
          held.push(
            await t.runtime.executeTask({ agentId: 'one-at-a-time', action: 'wait', input: { ms: 60_000 } }),
          );
        const ping = await t.runtime.executeTask({ agentId: 'analyst', action: 'ping' });
        // Two slots, and a poll that would come only after the wait below gives up: the first claim
        // picks the two held tasks, begins one and passes over the other (their agent's limit).
        // Only a claim right after it finds the ping.
        const worker = await createRuntime({
          config: loadConfig({
            ...FAST_RUNTIME_ENV,
            DATABASE_URL: t.testDb.url!,
            CAS_WORKERS: '1',
            CAS_WORKER_CONCURRENCY: '2',
            CAS_WORKER_POLL_MS: '60000',
          }),
          logger: silentLogger(),
        });
        try {
          await until(
            'the ping to succeed',
            async () => ((await statuses(t, [ping]))[0] === 'succeeded' ? true : undefined),
            20_000,
          );
          expect(await statuses(t, held)).toEqual(['running', 'queued']);
        } finally {
          await worker.shutdown({ deadlineMs: 0 });
        }
      },
    );
  });

  describe('per caller', () => {
    let t: TestRuntime;
    beforeAll(async () => {
      t = await openTestRuntime(kind, { CAS_WORKER_CONCURRENCY: '10', CAS_MAX_RUNNING_PER_CALLER: '1' });
    });
    afterAll(() => t.close());

    it('CAS_MAX_RUNNING_PER_CALLER=1: a caller runs one task at a time, other callers are not held up', async () => {
      const agent = await gatedAgent(t.runtime, 'shared');
      const alice: Task[] = [];
      for (let index = 0; index < 2; index += 1)
        alice.push(
          await t.runtime.executeTask({
            agentId: 'shared',
            action: 'hold',
            input: { caller: 'alice' },
            userId: 'alice',
          }),
        );
      await until('alice to run one', async () => (agent.waiting() === 1 ? true : undefined));
      const bob = await t.runtime.executeTask({
        agentId: 'shared',
        action: 'hold',
        input: { caller: 'bob' },
        userId: 'bob',
      });
      await until('bob to run beside alice', async () => (agent.waiting() === 2 ? true : undefined));
      await workerClaimedSince(t);
      expect(await statuses(t, alice)).toEqual(expect.arrayContaining(['running', 'queued']));
      agent.openAll();
      await until('alice to run her second', async () => (agent.waiting() === 1 ? true : undefined));
      agent.openAll();
      await until('all to succeed', async () =>
        (await statuses(t, [...alice, bob])).every((status) => status === 'succeeded') ? true : undefined,
      );
      expect(agent.mostAtOnce('alice')).toBe(1);
    });
  });
});
