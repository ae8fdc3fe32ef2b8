import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodeCursor } from '../../src/domains/pagination.js';
import type { AgentRuntime } from '../../src/runtime/agent-runtime.js';
import { describeEachDatabase } from '../support/databases.js';
import { databaseSnapshot, openTestRuntime, type TestRuntime } from '../support/runtime.js';

type Case = [name: string, call: (runtime: AgentRuntime) => Promise<unknown>, code: string, message?: RegExp];

const UNKNOWN_TASK = '00000000-0000-4000-8000-000000000000';
const NUL = 'a\u0000b';
/** `{ a: { a: ... } }`, `levels` objects deep. */
const nested = (levels: number): unknown => {
  let value: unknown = 'bottom';
  for (let level = 0; level < levels; level += 1) value = { a: value };
  return value;
};
const PAST_THE_HEAD = 1_000_000_000;
const anyTaskId = async (r: AgentRuntime) => (await r.listTasks({ first: 1 })).items[0]!.id;
const firstItem = (stream: AsyncIterable<unknown>) => stream[Symbol.asyncIterator]().next();

/** Each input path that reaches the database with text; a NUL there must be refused before any write. */
const nulCases: Case[] = (
  [
    ['agent name', (r) => r.registerAgent({ id: 'nul', name: NUL, role: 'qa' }), 'BAD_USER_INPUT'],
    ['agent role', (r) => r.registerAgent({ id: 'nul', name: 'X', role: NUL }), 'BAD_USER_INPUT'],
    [
      'agent description',
      (r) => r.registerAgent({ id: 'nul', name: 'X', role: 'qa', description: NUL }),
      'BAD_USER_INPUT',
    ],
    ['task action', (r) => r.executeTask({ agentId: 'qa', action: NUL }), 'BAD_USER_INPUT'],
    [
      'task idempotency key',
      (r) => r.executeTask({ agentId: 'qa', action: 'ping', idempotencyKey: NUL }),
      'BAD_USER_INPUT',
    ],
    [
      'task input string',
      (r) => r.executeTask({ agentId: 'qa', action: 'ping', input: NUL }),
      'BAD_USER_INPUT',
    ],
    [
      'task input, deep in an array',
      (r) => r.executeTask({ agentId: 'qa', action: 'ping', input: { list: [1, { deep: [NUL] }] } }),
      'BAD_USER_INPUT',
      /input\.list\.1\.deep\.0: must not contain the NUL character/,
    ],
    [
      'task input key',
      (r) => r.executeTask({ agentId: 'qa', action: 'ping', input: { outer: { [NUL]: 1 } } }),
      'BAD_USER_INPUT',
    ],
    [
      'diagnostic fail message',
      (r) => r.executeTask({ agentId: 'qa', action: 'fail', input: { message: NUL } }),
      'BAD_USER_INPUT',
    ],
    ['state value', (r) => r.updateAgentState('qa', { note: NUL }), 'BAD_USER_INPUT'],
    ['state key', (r) => r.updateAgentState('qa', { nested: { [NUL]: true } }), 'BAD_USER_INPUT'],
    ['metric series name', (r) => r.getMetricSeries('qa', NUL), 'BAD_USER_INPUT'],
  ] satisfies Case[]
).map(([name, ...rest]) => [`a NUL in the ${name}`, ...rest]);

const depthCases: Case[] = [
  [
    'task input nested 101 levels deep',
    (r) => r.executeTask({ agentId: 'qa', action: 'ping', input: nested(101) }),
    'BAD_USER_INPUT',
    /input: is nested too deeply \(more than 100 levels\)/,
  ],
  [
    'task input nested 100,000 levels deep',
    (r) => r.executeTask({ agentId: 'qa', action: 'ping', input: nested(100_000) }),
    'BAD_USER_INPUT',
    /nested too deeply/,
  ],
  [
    'state nested 101 levels deep',
    (r) => r.updateAgentState('qa', nested(101)),
    'BAD_USER_INPUT',
    /data: is nested too deeply/,
  ],
];

const cursorCases: Case[] = [
  [
    'events after a cursor past the head',
    (r) => r.getEventHistory({ after: encodeCursor('event', PAST_THE_HEAD) }),
    'BAD_USER_INPUT',
    /past the end of the event log/,
  ],
  [
    'logs after a cursor past the head',
    (r) => r.getLogs({ after: encodeCursor('log', PAST_THE_HEAD) }),
    'BAD_USER_INPUT',
    /past the end of the log log|past the end of the log/,
  ],
  [
    'task events after a cursor past the head',
    async (r) => firstItem(r.streamTask(await anyTaskId(r), { after: encodeCursor('event', PAST_THE_HEAD) })),
    'BAD_USER_INPUT',
  ],
  [
    'event subscription after a cursor past the head',
    (r) => firstItem(r.subscribeEvents({ after: encodeCursor('event', PAST_THE_HEAD) })),
    'BAD_USER_INPUT',
  ],
];

const year = (iso: string) => new Date(iso);
const dateCases: Case[] = [
  [
    'runAt in year 50',
    (r) => r.executeTask({ agentId: 'qa', action: 'ping', runAt: year('0050-06-01T00:00:00Z') }),
    'BAD_USER_INPUT',
    /runAt: must be 1970-01-01T00:00:00Z or later/,
  ],
  [
    'runAt in 1969',
    (r) => r.executeTask({ agentId: 'qa', action: 'ping', runAt: year('1969-12-31T23:59:59.999Z') }),
    'BAD_USER_INPUT',
  ],
  [
    'runAt past year 9999',
    (r) => r.executeTask({ agentId: 'qa', action: 'ping', runAt: year('+010000-01-01T00:00:00Z') }),
    'BAD_USER_INPUT',
  ],
  [
    'runAt an invalid date',
    (r) => r.executeTask({ agentId: 'qa', action: 'ping', runAt: new Date(NaN) }),
    'BAD_USER_INPUT',
  ],
  ['logs from year 1', (r) => r.getLogs({ from: year('0001-01-01T00:00:00Z') }), 'BAD_USER_INPUT'],
  ['logs to year 99', (r) => r.getLogs({ to: year('0099-12-31T00:00:00Z') }), 'BAD_USER_INPUT'],
  [
    'metrics from year 10',
    (r) => r.getMetrics('qa', { from: year('0010-01-01T00:00:00Z') }),
    'BAD_USER_INPUT',
  ],
  [
    'a metric series to year 10000',
    (r) => r.getMetricSeries('qa', 'runs', { to: year('+010000-01-01T00:00:00Z') }),
    'BAD_USER_INPUT',
  ],
];

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

  it.each([...cases, ...nulCases, ...depthCases, ...cursorCases, ...dateCases])(
    '%s: a typed error, nothing written',
    async (_name, call, code, message) => {
      const before = await databaseSnapshot(t.db);
      const error = await call(t.runtime).then(
        () => null,
        (thrown: unknown) => thrown,
      );
      expect(error).toMatchObject({ name: 'CasError', code });
      if (message) expect((error as Error).message).toMatch(message);
      expect(await databaseSnapshot(t.db)).toBe(before);
    },
  );

  it('stores the first and last accepted dates exactly', async () => {
    for (const runAt of [year('1970-01-01T00:00:00.000Z'), year('9999-12-31T23:59:59.999Z')]) {
      const task = await t.runtime.executeTask({ agentId: 'qa', action: 'ping', runAt });
      const [stored] = await t.runtime.getTasks([task.id]);
      expect(stored!.runAt.toISOString()).toBe(runAt.toISOString());
      // The 1970 one runs at once; the year-9999 one would wait in the queue for ever.
      if (runAt.getUTCFullYear() === 9999) await t.runtime.cancelTask(task.id);
    }
  });
});
