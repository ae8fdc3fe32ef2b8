import { json, type SqlFunctions } from '../../db/sql-functions.js';
import { toDateOrNull } from '../../db/rows.js';
import { replaceNulCharacters } from '../../validation.js';
import type { Lease } from './task.js';

/**
 * What a task's durable operations produced, stored with the task so a task that runs again
 * replays them: `step` results, children (`call`), `sleep`s and `signal` waits.
 */
export type StepKind = 'step' | 'call' | 'sleep' | 'signal';
export type StepStatus = 'pending' | 'completed' | 'failed' | 'timed_out';

export interface TaskStep {
  key: string;
  kind: StepKind;
  status: StepStatus;
  result: unknown;
  error: { message: string; code: string; childTaskId?: string } | null;
  childTaskId: string | null;
  signalName: string | null;
  wakeAt: Date | null;
}

/** One child to queue: `key` is the parent's step for it. */
export interface ChildTaskRequest {
  key: string;
  agentId: string;
  action: string;
  input: unknown;
  maxAttempts?: number;
  timeoutMs?: number;
}

interface StepRow {
  step_key: string;
  kind: StepKind;
  status: StepStatus;
  result: unknown;
  error: TaskStep['error'];
  child_task_id: string | null;
  signal_name: string | null;
  wake_at: unknown;
}

const stepFromRow = (row: StepRow): TaskStep => ({
  key: row.step_key,
  kind: row.kind,
  status: row.status,
  result: row.result ?? null,
  error: row.error,
  childTaskId: row.child_task_id,
  signalName: row.signal_name,
  wakeAt: toDateOrNull(row.wake_at),
});

/** The durable operations of a running attempt; each write presents the attempt's lease. */
export function taskStepStore(sql: SqlFunctions) {
  const steps = async (fn: string, args: Parameters<SqlFunctions['rows']>[1]) =>
    (await sql.rows<StepRow>(fn, args)).map(stepFromRow);
  const lease = (held: Lease) => ({ p_task_id: held.id, p_lease_token: held.leaseToken });

  return {
    /** Every step of the task, after settling sleeps and signal waits whose time has come. */
    forRun: (held: Lease) => steps('cas_task_steps_for_run', lease(held)),
    start: (held: Lease, key: string) =>
      sql.value<boolean>('cas_start_step', { ...lease(held), p_step_key: key }),
    complete: async (held: Lease, key: string, result: unknown) =>
      (
        await steps('cas_complete_step', { ...lease(held), p_step_key: key, p_result: json(result ?? null) })
      )[0]!,
    fail: (held: Lease, key: string, error: { message: string; code: string }) =>
      sql.value<boolean>('cas_fail_step', {
        ...lease(held),
        p_step_key: key,
        p_error: json(replaceNulCharacters(error)),
      }),
    /** Queues the children not queued before; answers every requested call's step. */
    call: (held: Lease, calls: readonly ChildTaskRequest[], maxDepth: number) =>
      steps('cas_call_children', { ...lease(held), p_calls: json(calls), p_max_depth: maxDepth }),
    /** A sleep of `waitMs`, or a wait for signal `signalName` (at most `waitMs`, if set). */
    beginWait: async (
      held: Lease,
      key: string,
      wait: { kind: 'sleep'; waitMs: number } | { kind: 'signal'; signalName: string; waitMs: number | null },
    ) =>
      (
        await steps('cas_begin_wait', {
          ...lease(held),
          p_step_key: key,
          p_kind: wait.kind,
          p_signal_name: wait.kind === 'signal' ? wait.signalName : null,
          p_wait_ms: wait.waitMs,
        })
      )[0]!,
  };
}
export type TaskStepStore = ReturnType<typeof taskStepStore>;
