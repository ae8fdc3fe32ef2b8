import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../support/databases.js';
import { databaseSnapshot, openTestRuntime, type TestRuntime } from '../support/runtime.js';

describeEachDatabase('agent state', (kind) => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await openTestRuntime(kind, { CAS_WORKERS: '0' });
  });
  afterAll(() => t.close());

  it('is null before the first update, then versioned from 1 with an event each time', async () => {
    expect(await t.runtime.getAgentState('planner')).toBeNull();
    const first = await t.runtime.updateAgentState('planner', { goal: 'launch' }, { userId: 'carol' });
    expect(first).toMatchObject({
      agentId: 'planner',
      version: 1,
      data: { goal: 'launch' },
      isActive: true,
      userId: 'carol',
    });
    const second = await t.runtime.updateAgentState('planner', { goal: 'launch', step: 2 });
    expect(second.version).toBe(2);
    expect(await t.runtime.getAgentState('planner')).toMatchObject({
      version: 2,
      data: { goal: 'launch', step: 2 },
    });
    const events = await t.runtime.getEventHistory({ agentId: 'planner', types: ['state_updated'] });
    expect(events.items.map((event) => event.payload)).toEqual([
      { version: 1, previousVersion: null },
      { version: 2, previousVersion: 1 },
    ]);
  });

  it('an expected version that does not match is a conflict that writes nothing', async () => {
    await t.runtime.updateAgentState('developer', { a: 1 });
    const before = await databaseSnapshot(t.db);
    await expect(
      t.runtime.updateAgentState('developer', { a: 2 }, { expectedVersion: 5 }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('version 1, not 5'),
    });
    expect(await databaseSnapshot(t.db)).toBe(before);
    const updated = await t.runtime.updateAgentState('developer', { a: 2 }, { expectedVersion: 1 });
    expect(updated.version).toBe(2);
  });

  it('expected version 0 creates state only when there is none', async () => {
    const created = await t.runtime.updateAgentState('tester', { x: true }, { expectedVersion: 0 });
    expect(created.version).toBe(1);
    await expect(
      t.runtime.updateAgentState('tester', { x: false }, { expectedVersion: 0 }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('concurrent updates with the same expected version: exactly one wins', async () => {
    const current = await t.runtime.updateAgentState('engineer', { n: 0 });
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, n) =>
        t.runtime.updateAgentState('engineer', { n }, { expectedVersion: current.version }),
      ),
    );
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((result) => result.status === 'rejected')).toHaveLength(7);
    expect((await t.runtime.getAgentState('engineer'))?.version).toBe(current.version + 1);
  });

  it('reset deactivates the state, keeps history, and the next update continues the version count', async () => {
    await t.runtime.updateAgentState('security', { level: 1 });
    await t.runtime.updateAgentState('security', { level: 2 });
    expect(await t.runtime.resetAgentState('security', { userId: 'dave' })).toBe(true);
    expect(await t.runtime.getAgentState('security')).toBeNull();
    expect(await t.runtime.resetAgentState('security')).toBe(false);
    const history = await t.runtime.getStateHistory('security');
    expect(history.map((state) => [state.version, state.isActive])).toEqual([
      [2, false],
      [1, false],
    ]);
    const next = await t.runtime.updateAgentState('security', { level: 3 }, { expectedVersion: 0 });
    expect(next.version).toBe(3);
    const reset = await t.runtime.getEventHistory({ agentId: 'security', types: ['state_reset'] });
    expect(reset.items).toHaveLength(1);
    expect(reset.items[0]).toMatchObject({ userId: 'dave', payload: { version: 2 } });
  });

  it('batch reads answer in order with null where there is no state', async () => {
    await t.runtime.updateAgentState('qa', { q: 1 });
    const states = await t.runtime.getAgentStates(['qa', 'marketer', 'qa']);
    expect(states.map((state) => state?.version ?? null)).toEqual([1, null, 1]);
  });

  it('refuses state that is not a JSON object, and unknown agents, writing nothing', async () => {
    const before = await databaseSnapshot(t.db);
    for (const data of [null, 42, 'text', [1, 2], undefined]) {
      await expect(t.runtime.updateAgentState('analyst', data)).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
      });
    }
    await expect(t.runtime.updateAgentState('analyst', { big: 'x'.repeat(1_100_000) })).rejects.toMatchObject(
      {
        code: 'BAD_USER_INPUT',
      },
    );
    await expect(t.runtime.updateAgentState('ghost', { a: 1 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(t.runtime.getAgentState('ghost')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(t.runtime.resetAgentState('ghost')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      t.runtime.updateAgentState('analyst', { a: 1 }, { expectedVersion: -1 }),
    ).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
    });
    expect(await databaseSnapshot(t.db)).toBe(before);
  });
});
