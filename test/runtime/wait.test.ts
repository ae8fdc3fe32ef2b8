/**
 * executeTask(wait: true): answers when the task's final event arrives on the change feed, stops
 * waiting when the caller goes away, and never holds a request longer than CAS_WAIT_TIMEOUT_MS.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';

/** A handler that runs until the test lets it finish, and says when it started. */
function heldAction() {
  let release!: () => void;
  let started!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const running = new Promise<void>((resolve) => (started = resolve));
  return {
    running,
    release,
    run: async () => {
      started();
      await released;
      return { released: true };
    },
  };
}

const eventSubscribers = (t: TestRuntime) => t.runtime.liveSubscriberCounts().events;

describeEachDatabase('executeTask(wait: true)', (kind) => {
  describe('with the default wait limit', () => {
    let t: TestRuntime;
    beforeAll(async () => {
      t = await openTestRuntime(kind);
    });
    afterAll(() => t.close());

    it('waits on the feed and answers once the task finishes, not before', async () => {
      const held = heldAction();
      t.runtime.defineActions('qa', { held: held.run });
      const idle = eventSubscribers(t);
      const order: string[] = [];
      const answer = t.runtime.executeTask({ agentId: 'qa', action: 'held', wait: true }).then((task) => {
        order.push('answered');
        return task;
      });
      await held.running;
      // The waiting request is one subscriber of the process's event tail, not a poll of its own.
      await vi.waitFor(() => expect(eventSubscribers(t)).toBe(idle + 1));
      order.push('released');
      held.release();
      const task = await answer;
      expect(order).toEqual(['released', 'answered']);
      expect(task).toMatchObject({ status: 'succeeded', result: { released: true } });
      expect(eventSubscribers(t)).toBe(idle);
    });

    it('answers at once for an idempotency key whose task is already final', async () => {
      const first = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'ping',
        idempotencyKey: 'done-before',
        wait: true,
      });
      expect(first.status).toBe('succeeded');
      const again = await t.runtime.executeTask({
        agentId: 'qa',
        action: 'ping',
        idempotencyKey: 'done-before',
        wait: true,
      });
      expect(again).toMatchObject({ id: first.id, status: 'succeeded' });
    });

    it('stops waiting when the caller aborts, leaving nothing subscribed', async () => {
      const held = heldAction();
      t.runtime.defineActions('qa', { heldToAbort: held.run });
      const idle = eventSubscribers(t);
      const caller = new AbortController();
      const answer = t.runtime.executeTask(
        { agentId: 'qa', action: 'heldToAbort', wait: true },
        { signal: caller.signal },
      );
      await held.running;
      await vi.waitFor(() => expect(eventSubscribers(t)).toBe(idle + 1));
      caller.abort();
      const task = await answer;
      expect(['queued', 'running']).toContain(task.status);
      expect(eventSubscribers(t)).toBe(idle);
      held.release();
    });
  });

  describe('with CAS_WAIT_TIMEOUT_MS=200', () => {
    let t: TestRuntime;
    beforeAll(async () => {
      t = await openTestRuntime(kind, { CAS_WAIT_TIMEOUT_MS: '200' });
    });
    afterAll(() => t.close());

    it('answers with the unfinished task when the wait limit passes first', async () => {
      const held = heldAction();
      t.runtime.defineActions('qa', { held: held.run });
      const idle = eventSubscribers(t);
      const task = await t.runtime.executeTask({ agentId: 'qa', action: 'held', wait: true });
      // The handler has not been released: the answer came from the limit, not the task.
      expect(['queued', 'running']).toContain(task.status);
      expect(task.finishedAt).toBeNull();
      expect(eventSubscribers(t)).toBe(idle);
      held.release();
    });
  });
});
