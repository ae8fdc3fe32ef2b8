import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AgentRuntime } from '../../src/runtime/agent-runtime.js';
import { describeEachDatabase } from '../support/databases.js';
import { databaseSnapshot, openTestRuntime, type TestRuntime } from '../support/runtime.js';

type Case = [name: string, call: (runtime: AgentRuntime) => Promise<unknown>, code: string];

const UNKNOWN_TASK = '00000000-0000-4000-8000-000000000000';
const cases: Case[] = [
  ['register with an empty id', (r) => r.registerAgent({ id: '', name: 'X', role: 'qa' }), 'BAD_USER_INPUT'],
  [
    'register with an upper-case id',
    (r) => r.registerAgent({ id: 'Bad Id', name: 'X', role: 'qa' }),
    'BAD_USER_INPUT',
  ],
  [
    'register with an SQL-looking id',
    (r) => r.registerAgent({ id: "x'; drop table cas_agents; --", name: 'X', role: 'qa' }),
    'BAD_USER_INPUT',
  ],
  [
    'register with a 300-character name',
    (r) => r.registerAgent({ id: 'long', name: 'n'.repeat(300), role: 'qa' }),
    'BAD_USER_INPUT',
  ],
  ['register without a role', (r) => r.registerAgent({ id: 'norole', name: 'X' } as never), 'BAD_USER_INPUT'],
  ['unregister an unknown agent', (r) => r.unregisterAgent('nobody'), 'NOT_FOUND'],
  ['status of an empty id', (r) => r.getAgentStatus(''), 'BAD_USER_INPUT'],
  ['execute on an unknown agent', (r) => r.executeTask({ agentId: 'nobody', action: 'ping' }), 'NOT_FOUND'],
  [
    'execute an unknown action',
    (r) => r.executeTask({ agentId: 'qa', action: 'launch_rockets' }),
    'BAD_USER_INPUT',
  ],
  ['execute with an empty action', (r) => r.executeTask({ agentId: 'qa', action: '' }), 'BAD_USER_INPUT'],
  [
    'execute with maxAttempts 0',
    (r) => r.executeTask({ agentId: 'qa', action: 'ping', maxAttempts: 0 }),
    'BAD_USER_INPUT',
  ],
  [
    'execute with maxAttempts 1000',
    (r) => r.executeTask({ agentId: 'qa', action: 'ping', maxAttempts: 1000 }),
    'BAD_USER_INPUT',
  ],
  [
    'execute with a negative timeout',
    (r) => r.executeTask({ agentId: 'qa', action: 'ping', timeoutMs: -5 }),
    'BAD_USER_INPUT',
  ],
  [
    'execute with 2 MB of input',
    (r) => r.executeTask({ agentId: 'qa', action: 'ping', input: 'x'.repeat(2_000_000) }),
    'BAD_USER_INPUT',
  ],
  [
    'execute wait with a string ms',
    (r) => r.executeTask({ agentId: 'qa', action: 'wait', input: { ms: 'soon' } }),
    'BAD_USER_INPUT',
  ],
  [
    'execute wait for ten hours',
    (r) => r.executeTask({ agentId: 'qa', action: 'wait', input: { ms: 36_000_000 } }),
    'BAD_USER_INPUT',
  ],
  ['cancel an unknown task', (r) => r.cancelTask(UNKNOWN_TASK), 'NOT_FOUND'],
  ['cancel a non-UUID task id', (r) => r.cancelTask('42; select 1'), 'BAD_USER_INPUT'],
  ['state of an unknown agent', (r) => r.updateAgentState('nobody', { a: 1 }), 'NOT_FOUND'],
  ['state that is not an object', (r) => r.updateAgentState('qa', 'not json object'), 'BAD_USER_INPUT'],
  [
    'state with a fractional expected version',
    (r) => r.updateAgentState('qa', {}, { expectedVersion: 1.5 }),
    'BAD_USER_INPUT',
  ],
  ['reset state of an unknown agent', (r) => r.resetAgentState('nobody'), 'NOT_FOUND'],
  ['logs with a negative limit', (r) => r.getLogs({ first: -1 }), 'BAD_USER_INPUT'],
  ['logs with an unknown level', (r) => r.getLogs({ levels: ['loud' as never] }), 'BAD_USER_INPUT'],
  ['events with a malformed task id', (r) => r.getEventHistory({ taskId: 'abc' }), 'BAD_USER_INPUT'],
  ['tasks with a limit of 501', (r) => r.listTasks({ first: 501 }), 'BAD_USER_INPUT'],
  ['tasks with an unknown status', (r) => r.listTasks({ statuses: ['paused' as never] }), 'BAD_USER_INPUT'],
  ['metrics of an unknown agent', (r) => r.getMetrics('nobody'), 'NOT_FOUND'],
  ['state history with limit 0', (r) => r.getStateHistory('qa', { limit: 0 }), 'BAD_USER_INPUT'],
];

describeEachDatabase('bad input at the runtime boundary', (kind) => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await openTestRuntime(kind);
    await t.runtime.executeTask({ agentId: 'qa', action: 'ping', wait: true });
  });
  afterAll(() => t.close());

  it.each(cases)('%s: a typed error, nothing written', async (_name, call, code) => {
    const before = await databaseSnapshot(t.db);
    await expect(call(t.runtime)).rejects.toMatchObject({ name: 'CasError', code });
    expect(await databaseSnapshot(t.db)).toBe(before);
  });
});
