import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SqlParam } from '../../src/db/database.js';
import { EVENT_TYPES } from '../../src/domains/event/event.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';

/**
 * The CHECK rules of cas_tasks, cas_agent_events and cas_task_steps live in one function per table
 * (supabase/migrations/20261215000100_cas_row_checks_in_functions.sql): each rule still refuses
 * its rows with check_violation naming the constraint it was before, NULL still passes, and a
 * refused write changes nothing.
 */

/** A row of cas_tasks that every rule accepts, with the columns a case overrides. */
const VALID_TASK: Record<string, SqlParam> = {
  agent_id: 'marketer',
  action: 'ping',
  status: 'queued',
  attempts: 0,
  max_attempts: 1,
  depth: 0,
  priority: 0,
  retry_delay_ms: 1000,
  worker_id: null,
  lease_token: null,
  finished_at: null,
  idempotency_key: null,
  progress: null,
  timeout_ms: null,
  trace_parent: null,
};

const LEASE = '00000000-0000-4000-8000-000000000001';

/** One row per rule: the overrides that break it alone (the rules are checked in name order). */
const BROKEN_TASKS: [constraint: string, overrides: Record<string, SqlParam>][] = [
  ['cas_tasks_action_check', { action: '' }],
  ['cas_tasks_attempts_check', { attempts: -1 }],
  ['cas_tasks_check', { attempts: 2, max_attempts: 1 }],
  ['cas_tasks_check1', { status: 'succeeded' }],
  ['cas_tasks_check2', { status: 'running', lease_token: LEASE }],
  ['cas_tasks_depth_check', { depth: -1 }],
  ['cas_tasks_idempotency_key_check', { idempotency_key: 'k'.repeat(201) }],
  ['cas_tasks_lease_token_check', { status: 'running', worker_id: 'w1' }],
  ['cas_tasks_max_attempts_check', { max_attempts: 101, attempts: 0 }],
  ['cas_tasks_priority_check', { priority: 1001 }],
  ['cas_tasks_progress_check', { progress: 1.5 }],
  ['cas_tasks_retry_delay_ms_check', { retry_delay_ms: -1 }],
  ['cas_tasks_status_check', { status: 'paused' }],
  ['cas_tasks_timeout_ms_check', { timeout_ms: 0 }],
  ['cas_tasks_trace_parent_check', { trace_parent: 't'.repeat(257) }],
];

/** Rows at the edges of every rule, which each rule accepts. */
const EDGE_TASKS: Record<string, SqlParam>[] = [
  { priority: -1000, progress: 0, retry_delay_ms: 0, timeout_ms: 1, idempotency_key: 'k' },
  { priority: 1000, progress: 1, retry_delay_ms: 3_600_000, timeout_ms: 86_400_000, max_attempts: 100 },
  { status: 'running', worker_id: 'w1', lease_token: LEASE, attempts: 1 },
  { status: 'failed', finished_at: '2026-12-01T00:00:00Z', attempts: 1, trace_parent: 't'.repeat(256) },
  { status: 'waiting', idempotency_key: 'k'.repeat(200) },
];

describeEachDatabase('row checks', (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase(kind);
  });
  afterAll(() => t.close());

  const insertTask = (overrides: Record<string, SqlParam>) => {
    const row = { ...VALID_TASK, ...overrides };
    const columns = Object.keys(row);
    return t.db.query(
      `insert into cas_tasks (${columns.join(', ')}) values (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
      Object.values(row),
    );
  };
  const taskCount = async () =>
    (await t.db.query<{ n: number }>('select count(*)::int as n from cas_tasks'))[0]!.n;

  /** The error a write failed with: SQLSTATE and message. */
  async function refusal(write: Promise<unknown>): Promise<{ code?: string; message: string }> {
    const error = await write.then(
      () => new Error('the write was accepted'),
      (e: unknown) => e as Error & { code?: string },
    );
    return { code: (error as { code?: string }).code, message: error.message };
  }

  it.each(BROKEN_TASKS)(
    'refuses a task row that breaks %s, naming it, and writes nothing',
    async (constraint, overrides) => {
      const before = await taskCount();
      expect(await refusal(insertTask(overrides))).toEqual({
        code: '23514',
        message: `new row for relation "cas_tasks" violates check constraint "${constraint}"`,
      });
      expect(await taskCount()).toBe(before);
    },
  );

  it('accepts task rows at the edges of every rule, and NULL where a column may be NULL', async () => {
    const before = await taskCount();
    for (const overrides of EDGE_TASKS) await insertTask(overrides);
    expect(await taskCount()).toBe(before + EDGE_TASKS.length);
  });

  it('refuses an update that breaks a rule, and leaves the row as it was', async () => {
    const [task] = await t.db.query<{ id: string }>(
      `select id from cas_enqueue_task('marketer', 'ping', null, p_priority => 7)`,
    );
    expect(
      await refusal(t.db.query('update cas_tasks set priority = 5000 where id = $1', [task!.id])),
    ).toEqual({
      code: '23514',
      message: 'new row for relation "cas_tasks" violates check constraint "cas_tasks_priority_check"',
    });
    const [row] = await t.db.query<{ priority: number }>('select priority from cas_tasks where id = $1', [
      task!.id,
    ]);
    expect(row!.priority).toBe(7);
  });

  it('refuses an event of an unknown type, and accepts every type the runtime appends', async () => {
    const append = (type: string) =>
      t.db.query(`select cas_append_event($1, 'marketer', null, '{}'::jsonb, null)`, [type]);
    expect(await refusal(append('task_exploded'))).toEqual({
      code: '23514',
      message:
        'new row for relation "cas_agent_events" violates check constraint "cas_agent_events_event_type_check"',
    });
    for (const type of EVENT_TYPES) await append(type);
  });

  it('refuses a step row that breaks a rule, naming it', async () => {
    const [task] = await t.db.query<{ id: string }>(
      `select id from cas_enqueue_task('marketer', 'ping', null)`,
    );
    const insertStep = (stepKey: string, kindOfStep: string, status: string) =>
      t.db.query(
        `insert into cas_task_steps (task_id, step_key, kind, status, attempt) values ($1, $2, $3, $4, 1)`,
        [task!.id, stepKey, kindOfStep, status],
      );
    const cases: [string, [string, string, string]][] = [
      ['cas_task_steps_kind_check', ['a', 'loop', 'pending']],
      ['cas_task_steps_status_check', ['a', 'step', 'lost']],
      ['cas_task_steps_step_key_check', ['', 'step', 'pending']],
    ];
    for (const [constraint, args] of cases) {
      expect(await refusal(insertStep(...args))).toEqual({
        code: '23514',
        message: `new row for relation "cas_task_steps" violates check constraint "${constraint}"`,
      });
    }
    await insertStep('s'.repeat(300), 'signal', 'timed_out');
  });
});
