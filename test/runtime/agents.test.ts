import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILT_IN_AGENT_IDS } from '../../src/domains/agent/agent.js';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime, testRuntimeName } from '../support/runtime.js';

describeEachDatabase('agents', (kind) => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await openTestRuntime(kind, { CAS_WORKERS: '0' });
  });
  afterAll(() => t.close());

  it('lists the eight built-in agents, idle, with names and descriptions', async () => {
    const agents = await t.runtime.listAgents();
    expect(agents.map((agent) => agent.id).sort()).toEqual([...BUILT_IN_AGENT_IDS].sort());
    for (const agent of agents) {
      expect(agent.status).toBe('idle');
      expect(agent.role).toBe(agent.id);
      expect(agent.name.length).toBeGreaterThan(1);
      expect(agent.description?.length).toBeGreaterThan(10);
      expect(agent.startedAt).toBeInstanceOf(Date);
    }
  });

  describe('register and unregister', () => {
    it('persists a new agent and records agent_registered with the user', async () => {
      const agent = await t.runtime.registerAgent(
        { id: 'writer', name: 'Writer', role: 'marketer', description: 'Writes copy' },
        { userId: 'alice' },
      );
      expect(agent).toMatchObject({ id: 'writer', name: 'Writer', role: 'marketer', status: 'idle' });
      const [row] = await t.db.query<{ name: string }>(`select name from cas_agents where id = 'writer'`);
      expect(row?.name).toBe('Writer');
      const events = await t.runtime.getEventHistory({ agentId: 'writer', types: ['agent_registered'] });
      expect(events.items).toHaveLength(1);
      expect(events.items[0]).toMatchObject({
        type: 'agent_registered',
        userId: 'alice',
        payload: { role: 'marketer' },
      });
    });

    it('unregistering stops the agent, keeps it and its history, and refuses new tasks', async () => {
      await t.runtime.registerAgent({ id: 'temp', name: 'Temp', role: 'tester' });
      const queued = await t.runtime.executeTask({ agentId: 'temp', action: 'ping' });
      const stopped = await t.runtime.unregisterAgent('temp');
      expect(stopped.status).toBe('stopped');
      expect(stopped.unregisteredAt).toBeInstanceOf(Date);
      expect((await t.runtime.getAgentStatus('temp')).status).toBe('stopped');
      const [task] = await t.runtime.getTasks([queued.id]);
      expect(task?.status).toBe('cancelled');
      await expect(t.runtime.executeTask({ agentId: 'temp', action: 'ping' })).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      const types = (await t.runtime.getEventHistory({ agentId: 'temp' })).items.map((event) => event.type);
      expect(types).toEqual(['agent_registered', 'task_queued', 'task_cancelled', 'agent_unregistered']);
    });

    it('unregistering twice is harmless and writes one event', async () => {
      await t.runtime.registerAgent({ id: 'twice', name: 'Twice', role: 'qa' });
      await t.runtime.unregisterAgent('twice');
      await t.runtime.unregisterAgent('twice');
      const events = await t.runtime.getEventHistory({ agentId: 'twice', types: ['agent_unregistered'] });
      expect(events.items).toHaveLength(1);
    });

    it('registering a stopped agent again brings it back idle with its new details', async () => {
      await t.runtime.registerAgent({ id: 'phoenix', name: 'Phoenix', role: 'qa' });
      await t.runtime.unregisterAgent('phoenix');
      const back = await t.runtime.registerAgent({ id: 'phoenix', name: 'Phoenix II', role: 'qa' });
      expect(back).toMatchObject({ status: 'idle', name: 'Phoenix II', unregisteredAt: null });
    });

    it('reports a clear error for unknown agents', async () => {
      await expect(t.runtime.getAgentStatus('ghost')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(t.runtime.unregisterAgent('ghost')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });

  it('answers batch reads in the order asked, null for unknown ids', async () => {
    const agents = await t.runtime.getAgents(['qa', 'nobody', 'analyst']);
    expect(agents.map((agent) => agent?.id ?? null)).toEqual(['qa', null, 'analyst']);
  });

  it('health check does a database round trip and reports migrations', async () => {
    const health = await t.runtime.healthCheck();
    expect(health).toMatchObject({
      ok: true,
      database: 'ok',
      runtime: testRuntimeName,
      migrationsApplied: true,
    });
    expect(health.databaseLatencyMs).toBeGreaterThan(0);
  });

  it('health checks close together share one database answer', async () => {
    const checks = await Promise.all([
      t.runtime.healthCheck(),
      t.runtime.healthCheck(),
      t.runtime.healthCheck(),
    ]);
    // The same answer (its latency included), not three round trips.
    expect(new Set(checks.map((health) => health.databaseLatencyMs)).size).toBe(1);
  });
});
